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
import { ClaimWatch, ControlledPublisher, FAST_CHECK, FAST_RELAY, gate, RELAY_OWNERSHIP } from './support/relay.fixture.js';
import { DELIVERY_OWNERSHIP, type DeliveryOwnership } from '../src/relay/ownership/delivery-ownership.js';

/**
 * The tests that look at per-message leases (lease_token) run with `relay.ownership: 'rows'`
 * whatever TM_RELAY_OWNERSHIP says; their key-bucket counterparts are in buckets.e2e-spec.ts.
 */
const ROWS = { ownership: 'rows' } as const;

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
      providers: [Writer, ThirdTimeLucky, SlowChecker],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return { app, publisher, producer: app.get(TransactionalMessageProducer) };
  }

  it('two relays publish every message once, in per-key order', async () => {
    const a = await instance({ relay: { batchSize: 20 } });
    const b = await instance({ relay: { batchSize: 20 } });
    if (RELAY_OWNERSHIP === 'buckets') {
      // Key buckets are shared at the relays' next maintenance: wait for it, or the first relay
      // drains everything alone.
      const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);
      await eventually('both relays hold key buckets', async () => {
        const [{ n }] = await db.dataSource.query(`SELECT COUNT(DISTINCT ${q('owner')}) AS n FROM ${q(`${db.tableName}_bucket`)} WHERE ${q('owner')} IS NOT NULL`);
        return Number(n) === 2;
      });
    }
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

  it('a message committed late (older seq) does not let a second relay take its key while a batch of the key is in flight', async () => {
    const writer = await instance({ relay: { ...ROWS, enabled: false } });
    // A: stored HALF first (lowest seq of the key), committed only later; B and C committed now.
    const a = await writer.producer.sendHalfMessage({ topic: topic.late, key: 'late-key', body: { m: 'A' }, checkImmunityMs: 60_000 });
    const committed: string[] = [];
    for (const m of ['B', 'C']) {
      committed.push((await writer.producer.sendMessageInTransaction({ topic: topic.late, key: 'late-key', body: { m } }, () => TransactionStatus.COMMIT)).messageId);
    }
    // Relay 1 claims B and C and hangs in publish: the key is in flight.
    const held = gate();
    const publisher1 = new ControlledPublisher();
    publisher1.publishGate = held.wait;
    await instance({ publisher: publisher1, relay: { ...ROWS, leaseMs: 60_000 } });
    await eventually('relay 1 is publishing B and C', () => publisher1.publishCalls === 1);
    const leaseOf = async (id: string) => (await messageRows(db)).find((r) => r.id === id)!.lease_token;
    const tokens = await Promise.all(committed.map(leaseOf));

    // A is committed now: its seq is older than B's and C's, so it is the key's head.
    await writer.producer.commit(a);
    // Relay 2 starts after that commit, and proves it has claimed since by publishing another key.
    const relay2 = await instance({ relay: { ...ROWS, leaseMs: 60_000 } });
    const other = (await writer.producer.sendMessageInTransaction({ topic: topic.late, key: 'other-key', body: { m: 'X' } }, () => TransactionStatus.COMMIT)).messageId;
    await consumer.waitFor('relay 2 published the other key', () => consumer.of(topic.late).some((r) => r.headers['tm-message-id'] === other));
    // The consumer can see the record before the producer's acknowledgement reaches relay 2; the
    // mark follows the acknowledgement, so once the row is DELIVERED relay 2 has recorded the send.
    await eventually('relay 2 marked the other key', async () => (await messageRows(db)).find((r) => r.id === other)?.status === 'DELIVERED');
    // Without the in-flight check, relay 2 took A as a head with B and C as followers, re-leased
    // them and published A, B, C while relay 1 was still sending B and C: two batches of one key at once.
    expect(relay2.publisher.sentIds()).toEqual([other]);
    expect(await Promise.all(committed.map(leaseOf))).toEqual(tokens);

    // Relay 1 finishes; then A goes out (after B and C: it was committed after them).
    held.open();
    await consumer.waitFor('A, B and C', () => [a, ...committed].every((id) => consumer.of(topic.late).some((r) => r.headers['tm-message-id'] === id)));
    const keyOrder = consumer.of(topic.late).filter((r) => r.key === 'late-key').map((r) => r.headers['tm-message-id']);
    expect(keyOrder).toEqual([...committed, a]);
  });

  it('a relay whose lease ran out and that lost the head of a key to another relay publishes none of that key', async () => {
    const writer = await instance({ relay: { ...ROWS, enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push((await writer.producer.sendMessageInTransaction({ topic: topic.split, key: 'split-key', body: { i } }, () => TransactionStatus.COMMIT)).messageId);
    }
    // Relay 1 claims the whole key and hangs in connect() past its lease.
    const stuck = gate();
    const publisher1 = new ControlledPublisher();
    publisher1.connectGate = stuck.wait;
    await instance({ publisher: publisher1, relay: { ...ROWS, leaseMs: 400 } });
    await eventually('relay 1 claimed the key', async () => (await messageRows(db)).filter((r) => ids.includes(r.id) && r.lease_token !== null).length === 4);
    await eventually('relay 1 is stuck connecting', () => publisher1.connectCalls === 1);
    const token1 = (await messageRows(db)).find((r) => r.id === ids[1])!.lease_token;

    // Relay 2 takes over the key's head only (a batch of one) and hangs in publish with it.
    const held = gate();
    const publisher2 = new ControlledPublisher();
    publisher2.publishGate = held.wait;
    await instance({ publisher: publisher2, relay: { ...ROWS, leaseMs: 60_000, batchSize: 1 } });
    await eventually('relay 2 is publishing the head', () => publisher2.publishCalls === 1);
    expect((await messageRows(db)).filter((r) => ids.includes(r.id) && r.lease_token === token1).map((r) => r.id)).toEqual(ids.slice(1));

    // Relay 1 wakes up: its renewal finds the head taken over. Publishing the rest of the key now
    // would put messages 1..3 before message 0; it must leave the whole key.
    stuck.open();
    await eventually('relay 1 let the rest of the key go', async () =>
      (await messageRows(db)).filter((r) => ids.slice(1).includes(r.id)).every((r) => r.lease_token !== token1),
    );
    expect(publisher1.sentIds()).toEqual([]);

    held.open();
    await consumer.waitFor('the whole key', () => ids.every((id) => consumer.of(topic.split).some((r) => r.headers['tm-message-id'] === id)));
    const keyOrder = consumer.of(topic.split).filter((r) => r.key === 'split-key').map((r) => r.headers['tm-message-id']);
    expect(keyOrder).toEqual(ids);
  });

  it('a relay claims keys past the oldest messages while another relay holds every key among them', async () => {
    const writer = await instance({ relay: { ...ROWS, enabled: false } });
    const send = async (key: string) =>
      (await writer.producer.sendMessageInTransaction({ topic: topic.window, key, body: {} }, () => TransactionStatus.COMMIT)).messageId;
    // Batches of 1: the first look covers the 4 oldest committed messages, all of one key whose
    // head another relay holds (a lease written here, as a frozen relay would leave it).
    const held: string[] = [];
    for (let i = 0; i < 6; i++) held.push(await send('held-key'));
    const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);
    const until = kind === 'mariadb' ? 'UTC_TIMESTAMP(3) + INTERVAL 60 SECOND' : `statement_timestamp() + interval '60 seconds'`;
    await db.dataSource.query(
      `UPDATE ${q(db.tableName)} SET ${q('lease_owner')} = 'frozen relay', ${q('lease_token')} = 'theirs', ${q('lease_expires_at')} = ${until} ` +
        `WHERE ${q('id')} = '${held[0]}'`,
    );
    const free = await send('free-key');
    const relay = await instance({ relay: { ...ROWS, batchSize: 1 } });
    await consumer.waitFor('the message past the window', () => consumer.of(topic.window).some((r) => r.headers['tm-message-id'] === free));
    await eventually('marked', async () => (await messageRows(db)).find((r) => r.id === free)?.status === 'DELIVERED');
    expect(relay.publisher.sentIds()).toEqual([free]);
    // The frozen relay's lease ends (a relay on 'buckets' in a later test would wait for it): the
    // relay delivers the held key, in order.
    await db.dataSource.query(
      `UPDATE ${q(db.tableName)} SET ${q('lease_owner')} = NULL, ${q('lease_token')} = NULL, ${q('lease_expires_at')} = NULL WHERE ${q('id')} = '${held[0]}'`,
    );
    await eventually('the held key marked', async () => (await messageRows(db)).filter((r) => held.includes(r.id)).every((r) => r.status === 'DELIVERED'));
    expect(relay.publisher.sentIds()).toEqual([free, ...held]);
  });

  it('a relay stuck past its lease neither publishes nor marks what another relay took over', async () => {
    // Relay A claims, then hangs in connect() (a broker that does not answer) past its lease.
    const stuck = gate();
    const publisherA = new ControlledPublisher();
    publisherA.connectGate = stuck.wait;
    const writer = await instance({ relay: { ...ROWS, enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { messageId } = await writer.producer.sendMessageInTransaction(
        { topic: topic.lease, key: `lease-${i % 2}`, body: { i } },
        () => TransactionStatus.COMMIT,
      );
      ids.push(messageId);
    }
    await instance({ publisher: publisherA, relay: { ...ROWS, leaseMs: 400 } });
    await eventually('A claimed the batch', async () => (await messageRows(db)).filter((r) => ids.includes(r.id) && r.lease_token !== null).length === 5);
    await eventually('A is stuck connecting', () => publisherA.connectCalls === 1);

    // B starts, waits out A's lease, takes the messages over and delivers them.
    const b = await instance({ relay: { ...ROWS, leaseMs: 400 } });
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
    const watchB = new ClaimWatch(b.app.get<DeliveryOwnership>(DELIVERY_OWNERSHIP));
    await eventually('relay B claimed twenty times', () => watchB.started >= 20);
    expect(publisherA.publishSettled).toBe(0); // A's publish was held all the while
    slow.open();
    await consumer.waitFor('the three messages', () => ids.every((id) => consumer.of(topic.slowPublish).some((r) => r.headers['tm-message-id'] === id)));
    await eventually('marked delivered', async () => (await messageRows(db)).filter((r) => ids.includes(r.id)).every((r) => r.status === 'DELIVERED'));
    expect(b.publisher.sentIds().filter((id) => ids.includes(id))).toEqual([]);
    // (With TM_RELAY_OWNERSHIP=buckets, A also publishes what earlier tests left leased row by row.)
    expect(publisherA.sentIds().filter((id) => ids.includes(id))).toEqual(ids);
    expect(consumer.of(topic.slowPublish).map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
  });
});
