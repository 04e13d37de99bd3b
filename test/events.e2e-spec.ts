import 'reflect-metadata';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  currentHalfMessage,
  onTransactionalMessageEvent,
  TransactionCheckHandler,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  transactionalMessageChannelName,
  TransactionStatus,
  type TransactionalMessageEventMap,
  type TransactionalMessageEventName,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { createTopics, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, InjectedFailure } from './support/relay.fixture.js';

describe.each(DATABASE_KINDS)('events on %s: one typed seam on node:diagnostics_channel', (kind) => {
  const topic = uniqueTopic(`${kind}.events`);
  let db: TestDatabase;
  let app: INestApplicationContext;
  const publisher = new ControlledPublisher();
  const seen: Array<{ name: TransactionalMessageEventName; event: unknown }> = [];
  const offs: Array<() => void> = [];

  @Injectable()
  class Orders {
    @TransactionalMessage<[string, 'commit' | 'unknown']>({ topic, key: ([id]) => id, body: ([id]) => ({ id }) })
    async pay(id: string, outcome: 'commit' | 'unknown'): Promise<void> {
      if (outcome === 'unknown') currentHalfMessage().unknown();
    }

    @TransactionCheckHandler({ topic })
    check(): TransactionStatus {
      return TransactionStatus.COMMIT;
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await createTopics([topic]);
    for (const name of ['message.stored', 'batch.published', 'message.failed', 'check.completed', 'message.ended'] as const) {
      offs.push(onTransactionalMessageEvent(name, (event) => seen.push({ name, event })));
    }
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: `events-${kind}`,
          checkImmunityMs: 0,
          publisher,
          relay: { autoStart: false, maxAttempts: 1 },
        }),
      ],
      providers: [Orders],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
  });

  afterAll(async () => {
    offs.forEach((off) => off());
    await app?.close();
    await db?.drop();
  });

  const ofName = <N extends TransactionalMessageEventName>(name: N) =>
    seen.filter((s) => s.name === name && (s.event as { producerGroup?: string }).producerGroup === `events-${kind}`).map((s) => s.event as TransactionalMessageEventMap[N]);

  it('reports stored, published, failed (dead), checked and ended messages, with what happened', async () => {
    const relay = app.get(TransactionalMessageRelay);
    const [ok, doomed, half] = [randomUUID(), randomUUID(), randomUUID()];
    await app.get(Orders).pay(ok, 'commit');
    await app.get(Orders).pay(doomed, 'commit');
    await app.get(Orders).pay(half, 'unknown');
    publisher.inject = (messages) => (messages.some((m) => m.key === doomed) ? new InjectedFailure('refused', { kind: 'message', retriable: false }) : undefined);
    await relay.drain();
    await relay.runChecksNow();
    const explicit = await app.get(TransactionalMessageProducer).sendHalfMessage({ topic, body: {} });
    await app.get(TransactionalMessageProducer).rollback(explicit);

    expect(ofName('message.stored').map((e) => [e.key, e.status])).toEqual([
      [ok, 'COMMITTED'],
      [doomed, 'COMMITTED'],
      [half, 'HALF'],
      [null, 'HALF'],
    ]);
    const failed = ofName('message.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ topic, attempt: 1, dead: true, error: 'refused', unclassified: false });
    expect(ofName('batch.published').reduce((sum, e) => sum + e.count, 0)).toBe(1);
    expect(ofName('batch.published')[0]).toMatchObject({ perTopic: { [topic]: 1 } });
    expect(ofName('check.completed').map((e) => [e.checkNumber, e.result, e.decision])).toEqual([[1, 'COMMIT', 'commit']]);
    expect(ofName('message.ended')).toEqual([{ instance: 'default', producerGroup: `events-${kind}`, id: explicit, outcome: 'ROLLBACK' }]);
  });

  it('the events are plain diagnostics_channel channels, named nestjs-transactional-message:<event>', async () => {
    const name = transactionalMessageChannelName('message.stored');
    expect(name).toBe('nestjs-transactional-message:message.stored');
    const got: unknown[] = [];
    const listener = (message: unknown) => got.push(message);
    subscribe(name, listener);
    try {
      await app.get(Orders).pay(randomUUID(), 'commit');
    } finally {
      unsubscribe(name, listener);
    }
    expect(got).toHaveLength(1);
  });
});
