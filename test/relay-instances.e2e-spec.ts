import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import {
  MessageStatus,
  TransactionCheckHandler,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type HalfMessage,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { createTestDatabase, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ClaimWatch, ControlledPublisher, FAST_CHECK, FAST_RELAY, gate } from './support/relay.fixture.js';
import { CheckStore } from '../src/store/check.store.js';
import { TransactionalMessageEngine } from '../src/engine/transactional-message.engine.js';

/** Several application instances, each with its own DataSource and relay, on one database. */
describe.each(['postgres', 'mariadb'] as const)('several relays on one %s database', (kind) => {
  const topic = {
    shared: uniqueTopic(`${kind}.shared`),
    lease: uniqueTopic(`${kind}.lease`),
    checks: uniqueTopic(`${kind}.checks`),
    slowChecks: uniqueTopic(`${kind}.slow-checks`),
    late: uniqueTopic(`${kind}.late`),
    split: uniqueTopic(`${kind}.split`),
    window: uniqueTopic(`${kind}.window`),
    slowPublish: uniqueTopic(`${kind}.slow-publish`),
    stall: uniqueTopic(`${kind}.stall`),
  };
  let db: TestDatabase;
  let consumer: TestConsumer;
  const apps: INestApplicationContext[] = [];
  const dataSources: DataSource[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await createTopics(Object.values(topic));
    consumer = await new TestConsumer(Object.values(topic)).start();
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const dataSource of dataSources.splice(0)) await dataSource.destroy();
  });

  afterAll(async () => {
    await consumer?.stop();
    await db?.drop();
  });

  /** Writes a message in the same transaction that commits it: seq order is commit order. */
  @Injectable()
  class Writer {
    @TransactionalMessage<[string, number, number]>({ topic: topic.shared, key: ([key]) => key, body: ([, w, i]) => ({ w, i }) })
    async write(key: string, w: number, i: number): Promise<void> {
      void [key, w, i];
    }
  }

  /** Answers UNKNOWN until a message's third check, and counts every call. */
  const checkCalls = new Map<string, number[]>();
  @Injectable()
  class ThirdTimeLucky {
    @TransactionCheckHandler({ topic: topic.checks })
    async check(message: HalfMessage): Promise<TransactionStatus> {
      checkCalls.set(message.id, [...(checkCalls.get(message.id) ?? []), message.checkCount]);
      await new Promise((resolve) => setTimeout(resolve, 20)); // long enough for a rival check to collide
      return message.checkCount >= 3 ? TransactionStatus.COMMIT : TransactionStatus.UNKNOWN;
    }
  }

  /** Takes 250 ms per check (one at a time, see the test), then commits; records every call. */
  const slowCalls = new Map<string, number[]>();
  @Injectable()
  class SlowChecker {
    @TransactionCheckHandler({ topic: topic.slowChecks })
    async check(message: HalfMessage): Promise<TransactionStatus> {
      slowCalls.set(message.id, [...(slowCalls.get(message.id) ?? []), message.checkCount]);
      await new Promise((resolve) => setTimeout(resolve, 250));
      return TransactionStatus.COMMIT;
    }
  }

  /** Commits at once; records every call with the message's status in the database at that moment. */
  const stallCalls = new Map<string, string[]>();
  @Injectable()
  class StatusRecordingChecker {
    constructor(private readonly dataSource: DataSource) {}

    @TransactionCheckHandler({ topic: topic.stall })
    async check(message: HalfMessage): Promise<TransactionStatus> {
      const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);
      const [row] = await this.dataSource.query(`SELECT ${q('status')} AS s FROM ${q(db.tableName)} WHERE ${q('id')} = ${kind === 'mariadb' ? '?' : '$1'}`, [message.id]);
      stallCalls.set(message.id, [...(stallCalls.get(message.id) ?? []), `${message.checkCount}:${row?.s}`]);
      return TransactionStatus.COMMIT;
    }
  }

  /** A new application instance with a DataSource of its own. */
  async function instance(options: Partial<TransactionalMessageModuleOptions> = {}) {
    const dataSource = await new DataSource(db.options).initialize();
    dataSources.push(dataSource);
    const publisher = (options.publisher as ControlledPublisher | undefined) ?? new ControlledPublisher();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource,
          producerGroup: 'shop',
          ...options,
          publisher,
          relay: { ...FAST_RELAY, ...options.relay },
          check: { ...FAST_CHECK, ...options.check },
        }),
      ],
      providers: [Writer, ThirdTimeLucky, SlowChecker, StatusRecordingChecker, { provide: DataSource, useValue: dataSource }],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return { app, publisher, producer: app.get(TransactionalMessageProducer) };
  }

  it('two relays publish every message once, in per-key order', async () => {
    const a = await instance({ relay: { batchSize: 20 } });
    const b = await instance({ relay: { batchSize: 20 } });
    // Key buckets are shared at the relays' next maintenance: wait for it, or the first relay
    // drains everything alone.
    const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);
    await eventually('both relays hold key buckets', async () => {
      const [{ n }] = await db.dataSource.query(`SELECT COUNT(DISTINCT ${q('owner')}) AS n FROM ${q(`${db.tableName}_bucket`)} WHERE ${q('owner')} IS NOT NULL`);
      return Number(n) === 2;
    });
    const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`);
    const written = new Map<string, string[]>(keys.map((k) => [k, []]));
    // Both instances write, concurrently, while both relays run.
    await Promise.all(
      [a, b].map(async (writer, w) => {
        for (let i = 0; i < 150; i++) await writer.app.get(Writer).write(keys[(i + w) % keys.length], w, i);
      }),
    );
    for (const row of await messageRows(db)) written.get(row.message_key)!.push(row.id);
    const all = [...written.values()].flat();
    await consumer.waitFor('300 messages', () => consumer.of(topic.shared).length >= 300);
    await eventually('all marked delivered', async () => (await messageRows(db)).every((r) => r.status === 'DELIVERED'));

    const received = consumer.of(topic.shared).map((r) => r.headers['tm-message-id']);
    expect(received).toHaveLength(300);
    expect(new Set(received).size).toBe(300);
    expect(new Set(received)).toEqual(new Set(all));
    // Per key, delivery follows seq order, which is the commit order: the key lock serialises
    // same-key writers from their INSERT to their COMMIT.
    const rows = await messageRows(db);
    for (const key of keys) {
      const bySeq = rows.filter((r) => r.message_key === key).map((r) => r.id);
      expect(consumer.of(topic.shared).filter((r) => r.key === key).map((r) => r.headers['tm-message-id'])).toEqual(bySeq);
    }
    // Both relays did work: the claims were shared, not serialised on one instance.
    expect(a.publisher.sentIds().length).toBeGreaterThan(0);
    expect(b.publisher.sentIds().length).toBeGreaterThan(0);
    expect(a.publisher.sentIds().length + b.publisher.sentIds().length).toBe(300);
  });

  it('two instances check each half message one at a time, and never after it was decided', async () => {
    const options = { relay: { pollIntervalMs: 10 }, check: { intervalMs: 30, batchSize: 5 } };
    const a = await instance(options);
    await instance(options);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await a.producer.sendHalfMessage({ topic: topic.checks, key: `c-${i}`, body: { i }, checkImmunityMs: 0 }));
    await consumer.waitFor('30 committed at their third check', () => ids.every((id) => consumer.of(topic.checks).some((r) => r.headers['tm-message-id'] === id)));
    for (const id of ids) {
      // Each check number once: no two instances checked the message at the same time, and none after the COMMIT.
      expect(checkCalls.get(id)).toEqual([1, 2, 3]);
      expect((await a.producer.getCheckHistory(id)).map((c) => `${c.checkNumber}:${c.result}`)).toEqual(['1:UNKNOWN', '2:UNKNOWN', '3:COMMIT']);
    }
  });

  it('a check batch that outlasts its lease is re-confirmed message by message: no message is checked twice', async () => {
    // Lease = max(relay.leaseMs, 2 × handlerTimeoutMs) = 600 ms; five 250 ms checks in a row take 1250 ms.
    const options = { relay: { leaseMs: 400 }, check: { intervalMs: 30, handlerTimeoutMs: 300, concurrency: 1, batchSize: 5 } };
    const a = await instance(options);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await a.producer.sendHalfMessage({ topic: topic.slowChecks, key: `s-${i}`, body: { i }, checkImmunityMs: 0 }));
    await eventually('A started checking', () => slowCalls.size > 0);
    await instance(options); // B polls every 30 ms for half messages whose lease ran out
    await consumer.waitFor('the 5 committed', () => ids.every((id) => consumer.of(topic.slowChecks).some((r) => r.headers['tm-message-id'] === id)));
    for (const id of ids) {
      // Without the re-confirmation A would call the handler on messages B had taken over (and decided).
      expect(slowCalls.get(id)).toEqual([1]);
      expect((await a.producer.getCheckHistory(id)).map((c) => `${c.checkNumber}:${c.result}`)).toEqual(['1:COMMIT']);
    }
  });

  it('a checker that stalls after its lease was confirmed confirms again before calling: a message decided meanwhile is never asked about', async () => {
    // Lease = max(relay.leaseMs, 2 × handlerTimeoutMs) = 600 ms. A's process "stalls" for 1.5 s
    // after the database confirmed its lease (as under CPU starvation or a long GC): B takes the
    // message over once the lease has run out, and decides it.
    const options = { relay: { leaseMs: 400 }, check: { intervalMs: 30, handlerTimeoutMs: 300 } };
    const a = await instance(options);
    const store = a.app.get(TransactionalMessageEngine).checkStore;
    const renew = store.renew.bind(store);
    let stalls = 0;
    let renewals = 0;
    let stalled!: () => void;
    const stallOver = new Promise<void>((resolve) => (stalled = resolve));
    store.renew = async (...args: Parameters<CheckStore['renew']>) => {
      renewals++;
      const held = await renew(...args);
      if (held && stalls++ === 0) {
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        stalled();
      }
      return held;
    };
    const id = await a.producer.sendHalfMessage({ topic: topic.stall, key: 'stall', body: {}, checkImmunityMs: 0 });
    await eventually('A confirmed its lease and stalled', () => stalls > 0);
    await instance(options);
    await consumer.waitFor('the message committed by B', () => consumer.of(topic.stall).some((r) => r.headers['tm-message-id'] === id));
    await stallOver;
    // A positive sign that A's check went on after its stall: it confirmed again (the fix), or,
    // without the fix, it called its handler a second time.
    await eventually('A went on after its stall', () => renewals >= 2 || (stallCalls.get(id)?.length ?? 0) >= 2);
    expect(stallCalls.get(id)).toEqual(['1:HALF']);
    expect((await a.producer.getCheckHistory(id)).map((c) => `${c.checkNumber}:${c.result}`)).toEqual(['1:COMMIT']);
  });

  it('a publish that lasts longer than the lease keeps it: no other relay publishes the batch meanwhile', async () => {
    const writer = await instance({ relay: { enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await writer.producer.sendMessageInTransaction({ topic: topic.slowPublish, key: `slow-${i}`, body: { i } }, () => TransactionStatus.COMMIT)).messageId);
    }
    // Relay A claims them and its publish takes four leases (a slow broker, the client's retries).
    const slow = gate();
    const publisherA = new ControlledPublisher();
    publisherA.publishGate = slow.wait;
    await instance({ publisher: publisherA, relay: { leaseMs: 500 } });
    await eventually('relay A is publishing', () => publisherA.publishCalls === 1);
    // Relay B polls all the while: it looks at least twenty times (a second of 50 ms polls, two
    // leases) before A's publish returns, so it had every chance to take the batch over.
    const b = await instance({ relay: { leaseMs: 500 } });
    const watchB = new ClaimWatch(b.app.get(TransactionalMessageEngine).ownership);
    await eventually('relay B claimed twenty times', () => watchB.started >= 20);
    expect(publisherA.publishSettled).toBe(0); // A's publish was held all the while
    slow.open();
    await consumer.waitFor('the three messages', () => ids.every((id) => consumer.of(topic.slowPublish).some((r) => r.headers['tm-message-id'] === id)));
    await eventually('marked delivered', async () => (await messageRows(db)).filter((r) => ids.includes(r.id)).every((r) => r.status === 'DELIVERED'));
    expect(b.publisher.sentIds().filter((id) => ids.includes(id))).toEqual([]);
    expect(publisherA.sentIds().filter((id) => ids.includes(id))).toEqual(ids);
    expect(consumer.of(topic.slowPublish).map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
  });
});
