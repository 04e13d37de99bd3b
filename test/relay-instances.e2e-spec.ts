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
import { ControlledPublisher, FAST_CHECK, FAST_RELAY, gate } from './support/relay.fixture.js';

/** Several application instances, each with its own DataSource and relay, on one database. */
describe.each(['postgres', 'mariadb'] as const)('several relays on one %s database', (kind) => {
  const topic = {
    shared: uniqueTopic(`${kind}.shared`),
    lease: uniqueTopic(`${kind}.lease`),
    checks: uniqueTopic(`${kind}.checks`),
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
      providers: [Writer, ThirdTimeLucky],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return { app, publisher, producer: app.get(TransactionalMessageProducer) };
  }

  it('two relays publish every message once, in per-key order', async () => {
    const a = await instance({ relay: { batchSize: 20 } });
    const b = await instance({ relay: { batchSize: 20 } });
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

  it('a relay stuck past its lease neither publishes nor marks what another relay took over', async () => {
    // Relay A claims, then hangs in connect() (a broker that does not answer) past its lease.
    const stuck = gate();
    const publisherA = new ControlledPublisher();
    publisherA.connectGate = stuck.wait;
    const writer = await instance({ relay: { enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { messageId } = await writer.producer.sendMessageInTransaction(
        { topic: topic.lease, key: `lease-${i % 2}`, body: { i } },
        () => TransactionStatus.COMMIT,
      );
      ids.push(messageId);
    }
    await instance({ publisher: publisherA, relay: { leaseMs: 400 } });
    await eventually('A claimed the batch', async () => (await messageRows(db)).filter((r) => ids.includes(r.id) && r.lease_token !== null).length === 5);
    await eventually('A is stuck connecting', () => publisherA.connectCalls === 1);

    // B starts, waits out A's lease, takes the messages over and delivers them.
    const b = await instance({ relay: { leaseMs: 400 } });
    await consumer.waitFor('the messages, from B', () => ids.every((id) => consumer.of(topic.lease).some((r) => r.headers['tm-message-id'] === id)));
    await eventually('B marked them', async () => (await messageRows(db)).filter((r) => ids.includes(r.id)).every((r) => r.status === 'DELIVERED'));
    const deliveredAt = (await messageRows(db)).map((r) => [r.id, String(r.delivered_at), r.delivery_attempts]);

    // A wakes up: its lease check finds the messages taken over; it publishes and marks nothing.
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      stuck.open();
      await eventually('A reported the lost lease', () =>
        warn.mock.calls.some(([text]) => String(text).includes('Lease lost on 5 message(s) (another relay took them over)')),
      );
    } finally {
      warn.mockRestore();
    }
    expect(publisherA.publishCalls).toBe(0);
    expect(publisherA.sentIds()).toEqual([]);
    expect((await messageRows(db)).map((r) => [r.id, String(r.delivered_at), r.delivery_attempts])).toEqual(deliveredAt);
    expect(b.publisher.sentIds().sort()).toEqual([...ids].sort());
    expect(consumer.of(topic.lease).map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await b.producer.getMessage(id))!.status).toBe(MessageStatus.DELIVERED);
  });
});
