import 'reflect-metadata';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import {
  currentHalfMessage,
  MessageStatus,
  TransactionAlreadyEndedError,
  TransactionCheckHandler,
  TransactionContext,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
  type HalfMessage,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { CheckStore } from '../src/store/check.store.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ClaimWatch, ControlledPublisher, FAST_CHECK, FAST_RELAY, gate, InjectedFailure } from './support/relay.fixture.js';
import { ShopOrder } from './support/shop.fixture.js';
import { TransactionalMessageEngine } from '../src/engine/transactional-message.engine.js';

describe.each(DATABASE_KINDS)('relay and transaction checks on %s (real Kafka)', (kind) => {
  const topic = {
    basic: uniqueTopic(`${kind}.basic`),
    seed: uniqueTopic(`${kind}.seed`),
    order: uniqueTopic(`${kind}.order`),
    poison: uniqueTopic(`${kind}.poison`),
    dead: uniqueTopic(`${kind}.dead`),
    checkThrows: uniqueTopic(`${kind}.check-throws`),
    checkHangs: uniqueTopic(`${kind}.check-hangs`),
    checkUnknown: uniqueTopic(`${kind}.check-unknown`),
    checkCommits: uniqueTopic(`${kind}.check-commits`),
    checkBounded: uniqueTopic(`${kind}.check-bounded`),
    noHandler: uniqueTopic(`${kind}.no-handler`),
    park: uniqueTopic(`${kind}.park`),
    shutdown: uniqueTopic(`${kind}.shutdown`),
    prune: uniqueTopic(`${kind}.prune`),
    concurrent: uniqueTopic(`${kind}.concurrent`),
    wake: uniqueTopic(`${kind}.wake`),
  };

  let db: TestDatabase;
  let consumer: TestConsumer;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    await createTopics(Object.values(topic));
    consumer = await new TestConsumer(Object.values(topic)).start();
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    await consumer?.stop();
    await db?.drop();
  });

  async function boot(
    providers: Function[],
    options: Partial<TransactionalMessageModuleOptions> = {},
    /** Runs after the module is compiled, before it starts (to watch its parts from the beginning). */
    beforeInit?: (moduleRef: TestingModule) => void,
  ): Promise<{ app: INestApplicationContext; publisher: ControlledPublisher; producer: TransactionalMessageProducer }> {
    const publisher = (options.publisher as ControlledPublisher | undefined) ?? new ControlledPublisher();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          checkImmunityMs: 100,
          ...options,
          publisher,
          relay: { ...FAST_RELAY, ...options.relay },
          check: { ...FAST_CHECK, ...options.check },
        }),
      ],
      providers: providers as never[],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    beforeInit?.(moduleRef);
    const app = await moduleRef.init();
    apps.push(app);
    return { app, publisher, producer: app.get(TransactionalMessageProducer) };
  }

  const statusOf = async (producer: TransactionalMessageProducer, id: string) => (await producer.getMessage(id))?.status;
  const idsOf = (t: string) => consumer.of(t).map((r) => r.headers['tm-message-id']);

  @Injectable()
  class PaymentService {
    constructor(readonly tx: TransactionContext) {}

    @TransactionalMessage<[string, string, 'commit' | 'rollback' | 'throw']>({
      topic: topic.basic,
      key: ([key]) => key,
      tags: ['paid', 'vip'],
      properties: () => ({ source: 'test' }),
      body: ([key, note]) => ({ key, note }),
    })
    async pay(key: string, note: string, outcome: 'commit' | 'rollback' | 'throw'): Promise<void> {
      await this.tx.getRepository(ShopOrder).insert({ id: randomUUID(), amount: 1 });
      if (outcome === 'throw') throw new Error('payment failed');
      if (outcome === 'rollback') currentHalfMessage().rollback();
    }
  }

  it('delivers a committed message with its key, body and headers; never a rolled-back or thrown one', async () => {
    const { app, producer } = await boot([PaymentService]);
    const service = app.get(PaymentService);
    const key = randomUUID();
    await service.pay(key, 'rolled back', 'rollback');
    await expect(service.pay(key, 'thrown', 'throw')).rejects.toThrow('payment failed');
    await service.pay(key, 'committed', 'commit');

    await consumer.waitFor('the committed message', () => consumer.of(topic.basic).some((r) => r.key === key));
    // The broker acknowledged before the relay marked the row: wait for the mark.
    await eventually('marked delivered', async () => (await messageRows(db)).some((r) => r.message_key === key && r.status === 'DELIVERED'));
    const rows = (await messageRows(db)).filter((row) => row.message_key === key);
    expect(rows.map((row) => row.status)).toEqual(['ROLLED_BACK', 'DELIVERED']);
    const records = consumer.of(topic.basic).filter((r) => r.key === key);
    // Same key, same partition, write order: had the rolled-back message gone out, it would be first.
    expect(records).toHaveLength(1);
    expect(records[0].json).toEqual({ key, note: 'committed' });
    expect(records[0].headers).toEqual({
      'tm-message-id': rows[1].id,
      'tm-producer-group': 'shop',
      'tm-content-type': 'application/json',
      'tm-tags': 'paid,vip',
      'tm-key': key,
      source: 'test',
    });
    const delivered = (await producer.getMessage(rows[1].id))!;
    expect(delivered).toMatchObject({ status: MessageStatus.DELIVERED, deliveryAttempts: 1, lastError: null });
    expect(delivered.deliveredAt).not.toBeNull();
  });

  it("the seeds' scenario: committed at once, at the first check, at the second check, rolled back at its check", async () => {
    const seen: Array<{ a: string; checkCount: number; alreadyDelivered: boolean }> = [];
    @Injectable()
    class SeedChecker {
      @TransactionCheckHandler({ topic: topic.seed })
      check(message: HalfMessage<{ a: number }>): TransactionStatus {
        const a = message.properties.a;
        seen.push({ a, checkCount: message.checkCount, alreadyDelivered: idsOf(topic.seed).includes(message.id) });
        if (a === '1') return TransactionStatus.COMMIT;
        if (a === '2') return message.checkCount >= 2 ? TransactionStatus.COMMIT : TransactionStatus.UNKNOWN;
        if (a === '3') return TransactionStatus.ROLLBACK;
        return TransactionStatus.UNKNOWN;
      }
    }
    const { producer } = await boot([SeedChecker]);
    const ids: string[] = [];
    for (const a of [0, 1, 2, 3]) {
      const { messageId } = await producer.sendMessageInTransaction(
        { topic: topic.seed, key: `seed-${a}`, body: { a }, properties: { a: String(a) } },
        () => (a === 0 ? TransactionStatus.COMMIT : TransactionStatus.UNKNOWN),
      );
      ids.push(messageId);
    }

    await consumer.waitFor('three seed messages', () => consumer.of(topic.seed).length >= 3);
    await eventually('a=3 rolled back', async () => (await statusOf(producer, ids[3])) === MessageStatus.ROLLED_BACK);
    expect(consumer.of(topic.seed).map((r) => (r.json as { a: number }).a).sort()).toEqual([0, 1, 2]);
    expect(seen.filter((s) => s.a === '0')).toEqual([]);
    expect(seen.filter((s) => s.a === '1')).toEqual([{ a: '1', checkCount: 1, alreadyDelivered: false }]);
    // a=2 was still undelivered at both of its checks: delivered only after the second one.
    expect(seen.filter((s) => s.a === '2')).toEqual([
      { a: '2', checkCount: 1, alreadyDelivered: false },
      { a: '2', checkCount: 2, alreadyDelivered: false },
    ]);
    expect(seen.filter((s) => s.a === '3')).toEqual([{ a: '3', checkCount: 1, alreadyDelivered: false }]);

    const history = await Promise.all(ids.map((id) => producer.getCheckHistory(id)));
    expect(history.map((h) => h.map((c) => `${c.checkNumber}:${c.result}`))).toEqual([[], ['1:COMMIT'], ['1:UNKNOWN', '2:COMMIT'], ['1:ROLLBACK']]);
    expect(history[2][0]).toMatchObject({ error: null, checker: expect.stringContaining('shop@') });
    // No check of a decided message: nothing was checked again after its decision.
    expect(seen).toHaveLength(4);
    // A late commit after the check decided rollback is refused.
    await expect(producer.commit(ids[3])).rejects.toThrow(TransactionAlreadyEndedError);
    expect(idsOf(topic.seed)).not.toContain(ids[3]);
  });

  it('keeps per-key order and loses nothing while publishes fail', async () => {
    const publisher = new ControlledPublisher();
    let call = 0;
    publisher.inject = () => (++call % 3 === 1 ? new InjectedFailure('injected failure', { kind: 'message', retriable: true }) : undefined);
    const { producer } = await boot([], { publisher, relay: { batchSize: 7 } });
    const keys = ['k1', 'k2', 'k3'].map((k) => `${k}-${randomUUID()}`);
    const written = new Map<string, string[]>(keys.map((k) => [k, []]));
    for (let i = 0; i < 60; i++) {
      const key = keys[i % 3];
      const { messageId } = await producer.sendMessageInTransaction({ topic: topic.order, key, body: { i } }, () => TransactionStatus.COMMIT);
      written.get(key)!.push(messageId);
    }
    await consumer.waitFor('60 ordered messages', () => consumer.of(topic.order).filter((r) => keys.includes(r.key!)).length >= 60);
    // A consumer can read a record before the producer has the broker's acknowledgement of it.
    await eventually('the relay has the 60 acknowledgements', () => publisher.sent.flat().filter((m) => keys.includes(m.key!)).length >= 60);
    for (const key of keys) {
      // What the relay published (once each, in order), and what the topic holds.
      expect(publisher.sent.flat().filter((m) => m.key === key).map((m) => m.id)).toEqual(written.get(key));
      expect(consumer.of(topic.order).filter((r) => r.key === key).map((r) => r.headers['tm-message-id'])).toEqual(written.get(key));
    }
    expect(call).toBeGreaterThan(20); // the failures really happened
  });

  it("a poison message (over the broker limit) goes DEAD while other keys keep flowing, and with onDead 'skip' its key resumes", async () => {
    const { producer } = await boot([], { maxMessageBytes: 3_000_000, relay: { batchSize: 50, onDead: 'skip' } });
    const [p, q] = [`p-${randomUUID()}`, `q-${randomUUID()}`];
    const send = (key: string, body: unknown) =>
      producer.sendMessageInTransaction({ topic: topic.poison, key, body }, () => TransactionStatus.COMMIT).then((r) => r.messageId);
    const before = await send(p, { n: 'before' });
    const poison = await send(p, { blob: 'x'.repeat(1_500_000) });
    const after = await send(p, { n: 'after' });
    const others: string[] = [];
    for (let i = 0; i < 5; i++) others.push(await send(q, { i }));

    await consumer.waitFor('the messages around the poison', () => [before, after, ...others].every((id) => idsOf(topic.poison).includes(id)));
    const dead = (await producer.getMessage(poison))!;
    expect(dead).toMatchObject({ status: MessageStatus.DEAD, deliveryAttempts: 1 });
    expect(dead.lastError).toMatch(/^MESSAGE_TOO_LARGE: /);
    expect(idsOf(topic.poison)).not.toContain(poison);
    expect(consumer.of(topic.poison).filter((r) => r.key === p).map((r) => r.headers['tm-message-id'])).toEqual([before, after]);
  });

  /** A publisher that refuses chosen messages for good (DEAD at once) while `refused` holds their ids. */
  function refusing(refused: Set<string>): ControlledPublisher {
    const publisher = new ControlledPublisher();
    publisher.inject = (messages) =>
      messages.some((m) => refused.has(m.id)) ? new InjectedFailure('refused for good', { kind: 'message', retriable: false }) : undefined;
    return publisher;
  }

  it("onDead 'hold' (the default): a DEAD message holds its key until replayed, then the key goes on in write order; discard lets it go on without it", async () => {
    const refused = new Set<string>();
    const { app, producer } = await boot([], { publisher: refusing(refused) });
    const tx = app.get(TransactionContext);
    const key = `held-${randomUUID()}`;
    const send = (k: string, n: string) =>
      producer.sendMessageInTransaction({ topic: topic.dead, key: k, body: { n } }, () => TransactionStatus.COMMIT).then((r) => r.messageId);
    const m1 = await send(key, 'm1');
    await consumer.waitFor('m1', () => idsOf(topic.dead).includes(m1));
    // m2 is refused; m3 and m4 are written behind it (and would be claimed with it).
    const ids = await tx.runInTransaction(async () => {
      const out: string[] = [];
      for (const n of ['m2', 'm3', 'm4']) {
        const id = await producer.sendHalfMessage({ topic: topic.dead, key, body: { n } });
        if (n === 'm2') refused.add(id);
        await producer.commit(id);
        out.push(id);
      }
      return out;
    });
    const [m2, m3, m4] = ids;
    await eventually('m2 DEAD', async () => (await statusOf(producer, m2)) === MessageStatus.DEAD);
    // Other keys flow meanwhile, and the relay has claimed again since m2 died: m3 and m4 still wait.
    const other = await send(`other-${randomUUID()}`, 'o');
    await consumer.waitFor('a message of another key', () => idsOf(topic.dead).includes(other));
    await eventually('the relay claimed after the other key', async () => (await statusOf(producer, other)) === MessageStatus.DELIVERED);
    expect(await statusOf(producer, m3)).toBe(MessageStatus.COMMITTED);
    expect(await statusOf(producer, m4)).toBe(MessageStatus.COMMITTED);

    refused.clear();
    expect(await producer.replay(m2)).toBe(true);
    await consumer.waitFor('the key after the replay', () => [m2, m3, m4].every((id) => idsOf(topic.dead).includes(id)));
    expect(consumer.of(topic.dead).filter((r) => r.key === key).map((r) => r.headers['tm-message-id'])).toEqual([m1, m2, m3, m4]);

    // Discard instead: the key goes on without the DEAD message.
    const key2 = `discarded-${randomUUID()}`;
    const [n1, n2] = await tx.runInTransaction(async () => {
      const first = await producer.sendHalfMessage({ topic: topic.dead, key: key2, body: { n: 'n1' } });
      refused.add(first);
      await producer.commit(first);
      const second = await producer.sendHalfMessage({ topic: topic.dead, key: key2, body: { n: 'n2' } });
      await producer.commit(second);
      return [first, second];
    });
    await eventually('n1 DEAD', async () => (await statusOf(producer, n1)) === MessageStatus.DEAD);
    expect(await producer.discard(n1)).toBe(true);
    expect(await producer.discard(n1)).toBe(false); // not DEAD any more
    await consumer.waitFor('n2 after the discard', () => idsOf(topic.dead).includes(n2));
    expect(await statusOf(producer, n1)).toBe(MessageStatus.DISCARDED);
    expect(consumer.of(topic.dead).filter((r) => r.key === key2).map((r) => r.headers['tm-message-id'])).toEqual([n2]);
  });

  it("onDead 'hold': a DEAD message holds its key on every topic (the key is one ordering unit across topics); other keys of that topic flow", async () => {
    const refused = new Set<string>();
    const { producer } = await boot([], { publisher: refusing(refused) });
    const key = `cross-${randomUUID()}`;
    const send = (t: string, k: string, n: string) =>
      producer.sendMessageInTransaction({ topic: t, key: k, body: { n } }, () => TransactionStatus.COMMIT).then((r) => r.messageId);
    // DEAD on one topic...
    const dead = await producer.sendHalfMessage({ topic: topic.dead, key, body: { n: 'dead' } });
    refused.add(dead);
    await producer.commit(dead);
    await eventually('the first message DEAD', async () => (await statusOf(producer, dead)) === MessageStatus.DEAD);
    // ...holds the key's later message on another topic, while another key of that topic goes out.
    const later = await send(topic.basic, key, 'later');
    const other = await send(topic.basic, `other-${randomUUID()}`, 'other');
    await consumer.waitFor('the other key on the second topic', () => idsOf(topic.basic).includes(other));
    await eventually('the relay claimed after the other key', async () => (await statusOf(producer, other)) === MessageStatus.DELIVERED);
    expect(await statusOf(producer, later)).toBe(MessageStatus.COMMITTED);
    expect(idsOf(topic.basic)).not.toContain(later);

    refused.clear();
    expect(await producer.replay(dead)).toBe(true);
    await consumer.waitFor('the key on both topics after the replay', () => idsOf(topic.dead).includes(dead) && idsOf(topic.basic).includes(later));
    // The consumer may read the record before the relay marks the row: wait for the mark.
    await eventually('the later message marked delivered', async () => (await statusOf(producer, later)) === MessageStatus.DELIVERED);
  });

  it("onDead 'skip': the key goes on without a DEAD message; replayed, it arrives after the later ones", async () => {
    const refused = new Set<string>();
    const { app, producer } = await boot([], { publisher: refusing(refused), relay: { onDead: 'skip' } });
    const tx = app.get(TransactionContext);
    const key = `skipped-${randomUUID()}`;
    const [m1, m2, m3] = await tx.runInTransaction(async () => {
      const out: string[] = [];
      for (const n of ['m1', 'm2', 'm3']) {
        const id = await producer.sendHalfMessage({ topic: topic.dead, key, body: { n } });
        if (n === 'm2') refused.add(id);
        await producer.commit(id);
        out.push(id);
      }
      return out;
    });
    await consumer.waitFor('m1 and m3', () => [m1, m3].every((id) => idsOf(topic.dead).includes(id)));
    expect(await statusOf(producer, m2)).toBe(MessageStatus.DEAD);
    refused.clear();
    expect(await producer.replay(m2)).toBe(true);
    await consumer.waitFor('the replayed m2', () => idsOf(topic.dead).includes(m2));
    expect(consumer.of(topic.dead).filter((r) => r.key === key).map((r) => r.headers['tm-message-id'])).toEqual([m1, m3, m2]);
  });

  it('a message that keeps failing goes DEAD after maxAttempts and is delivered once replayed', async () => {
    const publisher = new ControlledPublisher();
    let failing = true;
    let attempts = 0;
    publisher.inject = (messages) => {
      if (!failing || !messages.some((m) => m.key === 'doomed')) return undefined;
      attempts++;
      return new InjectedFailure('broker says no', { kind: 'message', retriable: true });
    };
    const { producer } = await boot([], { publisher, relay: { maxAttempts: 3 } });
    const { messageId } = await producer.sendMessageInTransaction({ topic: topic.poison, key: 'doomed', body: {} }, () => TransactionStatus.COMMIT);
    await eventually('DEAD', async () => (await statusOf(producer, messageId)) === MessageStatus.DEAD);
    expect(await producer.getMessage(messageId)).toMatchObject({ deliveryAttempts: 3, lastError: 'broker says no' });
    expect(await producer.replay(messageId)).toBe(true);
    expect(await producer.replay(messageId)).toBe(false); // not DEAD any more
    failing = false;
    await consumer.waitFor('the replayed message', () => idsOf(topic.poison).includes(messageId));
    // The consumer can see the record before the relay has the acknowledgement and marks it.
    await eventually('marked delivered', async () => (await statusOf(producer, messageId)) === MessageStatus.DELIVERED);
    expect(attempts).toBeGreaterThanOrEqual(3);
  });

  it('check handlers that throw, hang or keep answering UNKNOWN: rolled back after maxChecks, never blocking other checks', async () => {
    const hung = gate();
    @Injectable()
    class Checkers {
      @TransactionCheckHandler({ topic: topic.checkThrows })
      throws(): TransactionStatus {
        throw new Error('database of the payment provider is down');
      }

      @TransactionCheckHandler({ topic: topic.checkHangs })
      async hangs(): Promise<TransactionStatus> {
        await hung.wait;
        return TransactionStatus.COMMIT;
      }

      @TransactionCheckHandler({ topic: [topic.checkUnknown, topic.checkCommits] })
      answer(message: HalfMessage): TransactionStatus {
        return message.topic === topic.checkCommits ? TransactionStatus.COMMIT : TransactionStatus.UNKNOWN;
      }
    }
    const { producer } = await boot([Checkers], { check: { maxChecks: 3, handlerTimeoutMs: 200 } });
    const half = (t: string) => producer.sendHalfMessage({ topic: t, key: randomUUID(), body: { t } });
    const [throws, hangs, unknown] = [await half(topic.checkThrows), await half(topic.checkHangs), await half(topic.checkUnknown)];
    const commits = await half(topic.checkCommits);

    await consumer.waitFor('the message whose check commits', () => idsOf(topic.checkCommits).includes(commits));
    for (const id of [throws, hangs, unknown]) {
      await eventually(`message ${id} rolled back`, async () => (await statusOf(producer, id)) === MessageStatus.ROLLED_BACK);
    }
    hung.open();
    const histories = await Promise.all([throws, hangs, unknown].map((id) => producer.getCheckHistory(id)));
    for (const history of histories) {
      expect(history.map((c) => `${c.checkNumber}:${c.result}`)).toEqual(['1:UNKNOWN', '2:UNKNOWN', '3:UNKNOWN']);
    }
    expect(histories[0][0].error).toBe('Checkers.throws threw: database of the payment provider is down');
    expect(histories[1][0].error).toBe('Checkers.hangs did not answer within 200 ms');
    expect(histories[2][0].error).toBeNull();
    expect((await producer.getMessage(unknown))!.lastError).toBe('no decision after 3 checks (check.maxChecks)');
    expect([...idsOf(topic.checkThrows), ...idsOf(topic.checkHangs), ...idsOf(topic.checkUnknown)]).toEqual([]);
  });

  /** A check handler on topic.checkBounded that holds every call at `held` and records how many run at once. */
  function boundedChecker(held: Promise<void>) {
    const stats = { calls: [] as string[], running: new Map<string, number>(), runningNow: 0, maxRunning: 0, maxPerMessage: 0 };
    @Injectable()
    class SlowChecker {
      @TransactionCheckHandler({ topic: topic.checkBounded })
      async check(message: HalfMessage): Promise<TransactionStatus> {
        stats.calls.push(message.id);
        stats.runningNow++;
        stats.running.set(message.id, (stats.running.get(message.id) ?? 0) + 1);
        stats.maxRunning = Math.max(stats.maxRunning, stats.runningNow);
        stats.maxPerMessage = Math.max(stats.maxPerMessage, stats.running.get(message.id)!);
        try {
          await held;
          return TransactionStatus.COMMIT;
        } finally {
          stats.runningNow--;
          stats.running.set(message.id, stats.running.get(message.id)! - 1);
        }
      }
    }
    return { SlowChecker, stats };
  }

  /** Counts the checker's rounds (each begins with the expiry query), to wait for it to have run. */
  function countRounds(app: INestApplicationContext): { rounds: number } {
    const store = app.get(TransactionalMessageEngine).checkStore;
    const counter = { rounds: 0 };
    const expire = store.expire.bind(store);
    store.expire = (...args: Parameters<CheckStore['expire']>) => {
      counter.rounds++;
      return expire(...args);
    };
    return counter;
  }

  it('check handler calls that do not return are bounded by check.concurrency until they really settle; the others are checked once they return', async () => {
    const held = gate();
    const { SlowChecker, stats } = boundedChecker(held.wait);
    const { app, producer } = await boot([SlowChecker], { check: { concurrency: 2, handlerTimeoutMs: 100, intervalMs: 100, maxChecks: 1_000 } });
    const rounds = countRounds(app);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await producer.sendHalfMessage({ topic: topic.checkBounded, key: `k${i}`, body: { i } }));
    // Two calls start and are abandoned at the timeout; they hold both slots until they return.
    await eventually('two checks timed out', async () => (await Promise.all(ids.map((id) => producer.getCheckHistory(id)))).flat().length >= 2);
    const seen = rounds.rounds;
    await eventually('ten more check rounds', () => rounds.rounds >= seen + 10);
    expect(stats.calls).toHaveLength(2);
    expect(stats.maxRunning).toBe(2);
    held.open();
    await eventually('all five committed by a check', async () =>
      (await Promise.all(ids.map((id) => statusOf(producer, id)))).every((s) => s === MessageStatus.COMMITTED || s === MessageStatus.DELIVERED),
    );
    expect(new Set(stats.calls)).toEqual(new Set(ids));
    expect(stats.maxRunning).toBe(2);
    expect(stats.maxPerMessage).toBe(1);
  });

  it('a message whose check handler call has not returned is not called again: its later checks count as UNKNOWN until the call returns', async () => {
    const held = gate();
    const { SlowChecker, stats } = boundedChecker(held.wait);
    const { producer } = await boot([SlowChecker], { check: { concurrency: 4, handlerTimeoutMs: 100, intervalMs: 100, maxChecks: 1_000 } });
    const id = await producer.sendHalfMessage({ topic: topic.checkBounded, key: 'slow', body: {} });
    await eventually('three checks recorded', async () => (await producer.getCheckHistory(id)).length >= 3);
    expect(stats.calls).toEqual([id]);
    const [first, ...later] = await producer.getCheckHistory(id);
    expect(first.error).toBe('SlowChecker.check did not answer within 100 ms');
    for (const check of later) {
      expect(check.result).toBe(TransactionStatus.UNKNOWN);
      expect(check.error).toBe('SlowChecker.check has not returned from the previous check of this message; not called again');
    }
    held.open();
    await eventually('committed by the check after the call returned', async () => (await statusOf(producer, id)) !== MessageStatus.HALF);
    expect(stats.calls).toEqual([id, id]);
    expect(stats.maxPerMessage).toBe(1);
  });

  it('a message committed after its check was claimed and before the handler call is not asked about; one committed during the call keeps its commit and the answer is discarded', async () => {
    const held = gate();
    const { SlowChecker, stats } = boundedChecker(held.wait);
    let commitBeforeCall: string | undefined;
    const { producer } = await boot([SlowChecker], { check: { handlerTimeoutMs: 5_000 } }, (m) => {
      // Between the claim (its own transaction, committed) and the handler call.
      const work = m.get(TransactionalMessageEngine).background;
      const independent = work.independent.bind(work);
      work.independent = async (label, fn) => {
        const result = await independent(label, fn);
        if (label === 'check.claim' && commitBeforeCall && (result as Array<{ id: string }>).some((r) => r.id === commitBeforeCall)) {
          await m.get(TransactionalMessageProducer).commit(commitBeforeCall);
          commitBeforeCall = undefined;
        }
        return result;
      };
    });
    const before = await producer.sendHalfMessage({ topic: topic.checkBounded, key: 'before', body: {} });
    commitBeforeCall = before;
    await eventually('committed before the call, delivered', async () => (await statusOf(producer, before)) === MessageStatus.DELIVERED);
    expect(stats.calls).toEqual([]);
    expect(await producer.getCheckHistory(before)).toEqual([]);

    const during = await producer.sendHalfMessage({ topic: topic.checkBounded, key: 'during', body: {} });
    await eventually('the handler called', () => stats.calls.includes(during));
    await producer.commit(during);
    held.open(); // the handler answers COMMIT too late: the message was decided during the call
    await eventually('committed during the call, delivered', async () => (await statusOf(producer, during)) === MessageStatus.DELIVERED);
    expect(await producer.getCheckHistory(during)).toEqual([]);
    expect(stats.calls).toEqual([during]);
  });

  it("check exhaustion with onExhausted 'park': CHECK_EXHAUSTED until an operator commits it", async () => {
    @Injectable()
    class Undecided {
      @TransactionCheckHandler({ topic: topic.park })
      check(): TransactionStatus {
        return TransactionStatus.UNKNOWN;
      }
    }
    const { producer } = await boot([Undecided], { check: { maxChecks: 2, onExhausted: 'park' } });
    const id = await producer.sendHalfMessage({ topic: topic.park, key: 'parked', body: {} });
    await eventually('parked', async () => (await statusOf(producer, id)) === MessageStatus.CHECK_EXHAUSTED);
    expect((await producer.getCheckHistory(id)).length).toBe(2);
    await producer.commit(id);
    await consumer.waitFor('the parked message once committed', () => idsOf(topic.park).includes(id));
  });

  it('a topic without a check handler is never checked, and is rolled back after check.maxAgeMs', async () => {
    const { producer } = await boot([], { check: { maxAgeMs: 300 } });
    const id = await producer.sendHalfMessage({ topic: topic.noHandler, body: {} });
    await eventually('rolled back by age', async () => (await statusOf(producer, id)) === MessageStatus.ROLLED_BACK);
    expect((await producer.getMessage(id))!.lastError).toBe('no decision within check.maxAgeMs (300 ms)');
    expect(await producer.getCheckHistory(id)).toEqual([]);
  });

  it('shutdown in the middle of a publish releases the batch: nothing stays leased, nothing renews it, and another instance delivers it', async () => {
    const publisher = new ControlledPublisher();
    const held = gate();
    publisher.publishGate = held.wait;
    // A lease renewed every 100 ms while the publish lasts.
    const { app, producer } = await boot([], { publisher, relay: { shutdownTimeoutMs: 200, leaseMs: 300 } });
    const { messageId } = await producer.sendMessageInTransaction({ topic: topic.shutdown, key: 's', body: {} }, () => TransactionStatus.COMMIT);
    await eventually('the publish started', () => publisher.publishCalls > 0);
    const ownership = app.get(TransactionalMessageEngine).ownership;
    const renew = ownership.renew.bind(ownership);
    let renewals = 0;
    ownership.renew = (claim, seqs) => (renewals++, renew(claim, seqs));
    await eventually('the lease renewed during the publish', () => renewals > 0);
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    // The publish still hangs: its lease renewal stopped with the relay (its timer went on every
    // 100 ms after the shutdown released the batch, and kept the process alive).
    const atClose = renewals;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(renewals).toBe(atClose);
    expect(publisher.publishSettled).toBe(0);
    held.open();
    const [row] = (await messageRows(db)).filter((r) => r.id === messageId);
    expect(row).toMatchObject({ status: 'COMMITTED', lease_token: null, lease_owner: null, lease_expires_at: null });

    const next = await boot([]);
    await consumer.waitFor('the released message, from the next instance', () => idsOf(topic.shutdown).includes(messageId));
    await eventually('delivered', async () => (await statusOf(next.producer, messageId)) === MessageStatus.DELIVERED);
    await next.app.close();
    apps.splice(apps.indexOf(next.app), 1);
    expect((await messageRows(db)).filter((r) => r.lease_token !== null)).toEqual([]);
  });

  it('prunes delivered and rolled-back messages after the retention, never live or dead ones', async () => {
    const publisher = new ControlledPublisher();
    publisher.inject = (messages) =>
      messages.some((m) => m.key === 'dead') ? new InjectedFailure('refused', { kind: 'message', retriable: false }) : undefined;
    @Injectable()
    class Decider {
      @TransactionCheckHandler({ topic: topic.prune })
      check(message: HalfMessage): TransactionStatus {
        if (message.key === 'checked') return TransactionStatus.COMMIT;
        return message.key === 'rollback' ? TransactionStatus.ROLLBACK : TransactionStatus.UNKNOWN;
      }
    }
    const { producer } = await boot([Decider], { publisher, relay: { retentionMs: 0, pruneIntervalMs: 50 } });
    const send = (key: string, status: TransactionStatus) =>
      producer.sendMessageInTransaction({ topic: topic.prune, key, body: {} }, () => status).then((r) => r.messageId);
    const delivered = await send('delivered', TransactionStatus.COMMIT);
    const checkedRollback = await send('rollback', TransactionStatus.UNKNOWN);
    const checkedCommit = await send('checked', TransactionStatus.UNKNOWN);
    const dead = await send('dead', TransactionStatus.COMMIT);
    const half = await producer.sendHalfMessage({ topic: topic.prune, key: 'half', body: {}, checkImmunityMs: 3_600_000 });

    await consumer.waitFor('the delivered ones', () => idsOf(topic.prune).includes(delivered) && idsOf(topic.prune).includes(checkedCommit));
    // With retentionMs 0 the relay's mark deletes a delivered message (and its check history) itself.
    await eventually('delivered and rolled back pruned', async () => {
      const ids = (await messageRows(db)).map((r) => r.id);
      return !ids.includes(delivered) && !ids.includes(checkedCommit) && !ids.includes(checkedRollback);
    });
    expect(await producer.getCheckHistory(checkedCommit)).toEqual([]);
    expect(await statusOf(producer, dead)).toBe(MessageStatus.DEAD);
    expect(await statusOf(producer, half)).toBe(MessageStatus.HALF);
    expect(await producer.getCheckHistory(checkedRollback)).toEqual([]); // its check record went with it
  });

  if (kind !== 'sqlite') {
    it('per key, a message waits for an earlier open transaction of the same key; other keys are not held back or skipped', async () => {
      const { app, producer } = await boot([]);
      const context = app.get(TransactionContext);
      const send = (key: string, label: string) =>
        producer.sendMessageInTransaction({ topic: topic.concurrent, key, body: { label } }, () => TransactionStatus.COMMIT);
      const key = `same-${randomUUID()}`;
      const release = gate();
      const firstWritten = gate();
      @Injectable()
      class Writer {
        @TransactionalMessage<[string, string]>({ topic: topic.concurrent, key: ([k]) => k, body: ([, label]) => ({ label }) })
        async write(k: string, label: string): Promise<void> {
          void k;
          void label;
        }
      }
      const writer = (await boot([Writer], { relay: { enabled: false } })).app.get(Writer);
      // Transaction A writes the first message of the key and stays open.
      const first = context.runInTransaction(async () => {
        await writer.write(key, 'first');
        firstWritten.open();
        await release.wait;
      });
      await firstWritten.wait;
      // B, same key, must wait for A; C, another key, commits and is delivered meanwhile.
      const second = writer.write(key, 'second');
      const other = await send(`other-${randomUUID()}`, 'other');
      await consumer.waitFor('the other key', () => idsOf(topic.concurrent).includes(other.messageId));
      expect(consumer.of(topic.concurrent).filter((r) => r.key === key)).toEqual([]);
      release.open();
      await first;
      await second;
      await consumer.waitFor('both messages of the key', () => consumer.of(topic.concurrent).filter((r) => r.key === key).length >= 2);
      expect(consumer.of(topic.concurrent).filter((r) => r.key === key).map((r) => (r.json as { label: string }).label)).toEqual([
        'first',
        'second',
      ]);
    });
  }

  it('a database error while the next batch is read and a publish is held open leaves the process alive; the messages go out once the database answers', async () => {
    // The backlog is written before the relay starts, so its first claim is full and it reads ahead.
    const writer = await boot([], { relay: { enabled: false } });
    const key = randomUUID();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      ids.push((await writer.producer.sendMessageInTransaction({ topic: topic.order, key, body: { i } }, () => TransactionStatus.COMMIT)).messageId);
    }
    const held = gate();
    const publisher = new ControlledPublisher();
    publisher.publishGate = held.wait;
    const { app, producer } = await boot([], { publisher, relay: { batchSize: 5, autoStart: false } });
    const watch = new ClaimWatch(app.get(TransactionalMessageEngine).ownership);
    let intercepted = false;
    let failed = false;
    watch.intercept = (n) => {
      // The second claim is the read-ahead: the first found a full batch (5 of 12).
      if (n !== 2 || intercepted) return undefined;
      intercepted = true;
      // The read-ahead fails while the first batch's publish waits at the gate (unhandled, Node ends the process).
      return (async () => {
        await eventually('the first publish held open', () => publisher.publishCalls >= 1);
        failed = true;
        throw new Error('Connection terminated unexpectedly (injected)');
      })();
    };
    app.get(TransactionalMessageEngine).delivery.start();
    await eventually('the read-ahead failed', () => failed);
    await new Promise((resolve) => setTimeout(resolve, 100)); // Node reports an unhandled rejection on the next ticks
    expect(publisher.publishSettled).toBe(0); // the publish was still held open when the read failed
    held.open();
    await eventually('all twelve delivered', async () => (await Promise.all(ids.map((id) => statusOf(producer, id)))).every((s) => s === MessageStatus.DELIVERED));
    const published = publisher.sentIds().filter((id) => ids.includes(id));
    expect(published.filter((id, i) => published.indexOf(id) !== i)).toEqual([]);
    expect([...new Set(published)]).toEqual(ids);
  });

  it('reads one batch ahead of the publish, not more; a failure in the first holds its key back in the batch read ahead: nothing lost, duplicated or reordered', async () => {
    // A backlog of 4 keys × 6 messages, interleaved, written before the relay starts: batches of 5
    // hold messages of every key, so the first key's later messages sit in the batches read ahead.
    const writer = await boot([], { relay: { enabled: false } });
    const keys = [0, 1, 2, 3].map((k) => `ahead-${k}-${randomUUID()}`);
    const written = new Map<string, string[]>(keys.map((k) => [k, []]));
    for (let i = 0; i < 6; i++) {
      for (const key of keys) {
        written.get(key)!.push((await writer.producer.sendMessageInTransaction({ topic: topic.order, key, body: { i } }, () => TransactionStatus.COMMIT)).messageId);
      }
    }
    const held = gate();
    const publisher = new ControlledPublisher();
    publisher.publishGate = held.wait;
    const firstOfKey0 = written.get(keys[0])![0];
    let failed = 0;
    publisher.inject = (messages) => {
      if (failed === 0 && messages.some((m) => m.id === firstOfKey0)) {
        failed++;
        return new InjectedFailure('injected', { kind: 'message', retriable: true });
      }
      return undefined;
    };
    const { app, producer } = await boot([], { publisher, relay: { batchSize: 5, autoStart: false } });
    const watch = new ClaimWatch(app.get(TransactionalMessageEngine).ownership);
    app.get(TransactionalMessageEngine).delivery.start();
    // The first publish waits at the gate while the relay reads the next batch. Not two: a claim
    // read after a failure could pass the messages a claim read before it holds back (see READ_AHEAD).
    await eventually('one claim read ahead of the first publish', () => watch.started >= 2 && publisher.publishCalls >= 1);
    expect(watch.started).toBe(2); // one ahead, not more
    expect(publisher.publishSettled).toBe(0);
    held.open();
    const all = [...written.values()].flat();
    await eventually('all 24 delivered', async () => (await Promise.all(all.map((id) => statusOf(producer, id)))).every((s) => s === MessageStatus.DELIVERED));
    expect(failed).toBe(1);
    const sent = publisher.sentIds();
    expect(sent.filter((id, i) => sent.indexOf(id) !== i)).toEqual([]);
    for (const [key, ids] of written) expect(publisher.sent.flat().filter((m) => m.key === key).map((m) => m.id)).toEqual(ids);
  });

  it('a claim that let messages go and gives them back when it is finished does not take them from the claim that read them since: no third read publishes them again', async () => {
    // The relay's own sequence, step by step: claim A lets a key go (held back behind a failure),
    // the next claim B reads the key again once it is due, then A is finished and gives back what
    // it let go. Were B's messages taken out of flight by A's give-back, the read after B would
    // hold them too: published twice, after the later messages of their key.
    const { app, producer } = await boot([], { relay: { autoStart: false } });
    const ownership = app.get(TransactionalMessageEngine).ownership;
    const key = `late-${randomUUID()}`;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await producer.sendMessageInTransaction({ topic: topic.order, key, body: { i } }, () => TransactionStatus.COMMIT)).messageId);
    const ours = (messages: readonly { id: string }[]) => messages.map((m) => m.id).filter((id) => ids.includes(id));
    const a = await ownership.claim(true);
    expect(ours(a.messages)).toEqual(ids);
    const aRows = a.messages.filter((m) => ids.includes(m.id));
    ownership.letGo(a, aRows);
    const b = await ownership.claim(false);
    expect(ours(b.messages)).toEqual(ids);
    await ownership.release(a, aRows.map((r) => r.seq));
    const c = await ownership.claim(false);
    expect(ours(c.messages)).toEqual([]);
    await ownership.markDelivered(b, b.messages.filter((m) => ids.includes(m.id)).map((m) => m.seq));
    expect(ours((await ownership.claim(false)).messages)).toEqual([]);
    expect(await Promise.all(ids.map((id) => statusOf(producer, id)))).toEqual([MessageStatus.DELIVERED, MessageStatus.DELIVERED]);
  });

  it('wakes on a local commit without waiting for the poll', async () => {
    @Injectable()
    class Writer {
      @TransactionalMessage({ topic: topic.wake, body: () => ({ local: true }) })
      async write(): Promise<void> {}
    }
    // A ten-minute poll: a delivery within the test's time can only come from the wake-up.
    let watch!: ClaimWatch;
    const { app } = await boot([Writer], { relay: { pollIntervalMs: 600_000 } }, (m) => (watch = new ClaimWatch(m.get(TransactionalMessageEngine).ownership)));
    await watch.idle(); // the relay looked, found nothing and waits: only a wake-up delivers now
    await app.get(Writer).write();
    await consumer.waitFor('the locally committed message', () => consumer.of(topic.wake).some((r) => (r.json as { local?: boolean }).local));
  });

  if (kind === 'postgres') {
    it('wakes on a commit of another instance through LISTEN/NOTIFY', async () => {
      let watch!: ClaimWatch;
      await boot([], { relay: { pollIntervalMs: 600_000 } }, (m) => (watch = new ClaimWatch(m.get(TransactionalMessageEngine).ownership)));
      const writer = await boot([], { relay: { enabled: false } });
      await watch.idle(); // the relay looked, found nothing and waits: only a NOTIFY delivers now
      const { messageId } = await writer.producer.sendMessageInTransaction(
        { topic: topic.wake, body: { remote: true } },
        () => TransactionStatus.COMMIT,
      );
      await consumer.waitFor('the message committed by the other instance', () => idsOf(topic.wake).includes(messageId));
    });

    it('vacuums the message table every vacuumAfterRows delivered messages (the dead index entries claims read through), never with 0', async () => {
      const vacuums = async () => {
        await db.dataSource.query('SELECT pg_stat_clear_snapshot()');
        const [row] = await db.dataSource.query(`SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = $1`, [db.tableName]);
        return row.n as number;
      };
      const deliver = async (vacuumAfterRows: number, count: number) => {
        const { app, producer } = await boot([], { relay: { autoStart: false, retentionMs: 0, vacuumAfterRows } });
        for (let i = 0; i < count; i++) await producer.sendMessageInTransaction({ topic: topic.wake, key: `vacuum-${i % 3}`, body: { i } }, () => TransactionStatus.COMMIT);
        const [{ drainedFrom }] = await db.dataSource.query(`SELECT clock_timestamp() AS "drainedFrom"`);
        expect(await app.get(TransactionalMessageRelay).drain()).toBe(count);
        await app.close(); // waits for a vacuum in progress
        apps.splice(apps.indexOf(app), 1);
        return new Date(drainedFrom);
      };
      const before = await vacuums();
      await deliver(0, 30); // closed: a vacuum it had started would have finished
      const drainedFrom = await deliver(10, 30); // one vacuum once caught up (30 ≥ 10)
      // The second relay's vacuum seen is the positive sign; a vacuum of the first would make two.
      await eventually('the relay vacuumed the table', async () => (await vacuums()) > before);
      expect(await vacuums()).toBe(before + 1);
      // After the messages it delivered were deleted (what the dead entries are), not before. How many
      // dead rows it removed is PostgreSQL's business: a page pinned by a concurrent read at that
      // moment is skipped (VACUUM waits for no cleanup lock), so that count is not asserted.
      const [{ lastVacuum }] = await db.dataSource.query(`SELECT last_vacuum AS "lastVacuum" FROM pg_stat_user_tables WHERE relname = $1`, [db.tableName]);
      expect(new Date(lastVacuum).getTime()).toBeGreaterThan(drainedFrom.getTime());
    });
  }
});
