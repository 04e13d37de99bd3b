import { Observable } from 'rxjs';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
import type { OutgoingMessage } from '../message-publisher.interface.js';
import { ClientProxyPublisher, type EmittingClient } from './client-proxy.publisher.js';

/** A client that records what it emitted and fails the messages `refuse` names (a unit test of the publisher's own ordering). */
class RecordingClient implements EmittingClient {
  readonly emitted: string[] = [];
  constructor(private readonly refuse: ReadonlySet<number>) {}
  async connect(): Promise<void> {}
  close(): void {}
  emit<TResult>(_pattern: unknown, data: unknown): Observable<TResult> {
    const n = ((data as { body: { n: number } }).body).n;
    return new Observable<TResult>((subscriber) => {
      setTimeout(() => {
        if (this.refuse.has(n)) return subscriber.error(new Error(`nack of ${n}`));
        this.emitted.push(String(n));
        subscriber.complete();
      }, 1);
    });
  }
}

const message = (n: number, key: string | null): OutgoingMessage => ({
  id: `id-${n}`,
  topic: 'order.paid',
  key,
  value: Buffer.from(JSON.stringify({ n })),
  headers: { 'tm-content-type': 'application/json', 'tm-message-id': `id-${n}` },
  timestamp: new Date(0),
});

describe('ClientProxyPublisher', () => {
  it('sends each key in order, and nothing of a key after its failed message; the other keys go on', async () => {
    const client = new RecordingClient(new Set([2]));
    const publisher = new ClientProxyPublisher(client, { transport: 'redis' });
    await publisher.connect();
    const batch = [message(1, 'a'), message(2, 'a'), message(3, 'a'), message(4, 'b'), message(5, 'b'), message(6, null)];
    const error = await publisher.publish(batch).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...(error as PartialPublishError).accepted].sort()).toEqual(['id-1', 'id-4', 'id-5', 'id-6']);
    // 3 waits behind 2: never sent before 2 goes out.
    expect(client.emitted).not.toContain('3');
    expect(client.emitted.filter((n) => n === '4' || n === '5')).toEqual(['4', '5']);
    expect(publisher.classify(error)).toEqual({ kind: 'message', retriable: true });
  });

  it('rejects with the error itself when nothing was accepted, and resolves when all were', async () => {
    const failing = new ClientProxyPublisher(new RecordingClient(new Set([1])), { transport: 'redis' });
    await failing.connect();
    await expect(failing.publish([message(1, 'a'), message(2, 'a')])).rejects.toThrow('nack of 1');
    const fine = new ClientProxyPublisher(new RecordingClient(new Set()), { transport: 'redis' });
    await fine.connect();
    await expect(fine.publish([message(1, 'a'), message(2, null)])).resolves.toBeUndefined();
  });

  it('times a publish out as a transport failure', async () => {
    const silent: EmittingClient = { connect: async () => undefined, close: () => undefined, emit: () => new Observable(() => undefined) };
    const publisher = new ClientProxyPublisher(silent, { transport: 'redis', timeoutMs: 20 });
    await publisher.connect();
    const error = await publisher.publish([message(1, 'a')]).then(() => undefined, (e: unknown) => e);
    expect(String(error)).toMatch(/did not settle within 20 ms/);
    expect(publisher.classify(error)).toEqual({ kind: 'transport' });
  });
});
