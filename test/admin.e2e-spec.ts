import 'reflect-metadata';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import {
  InvalidMessageError,
  MessageStatus,
  TransactionCheckHandler,
  TransactionalMessageAdmin,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { createTopics, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, InjectedFailure } from './support/relay.fixture.js';
import { TransactionalMessageEngine } from '../src/engine/transactional-message.engine.js';

describe.each(DATABASE_KINDS)('TransactionalMessageAdmin on %s', (kind) => {
  const topic = { orders: uniqueTopic(`${kind}.admin-orders`), parked: uniqueTopic(`${kind}.admin-parked`) };
  let db: TestDatabase;
  let app: INestApplicationContext;
  let admin: TransactionalMessageAdmin;
  let producer: TransactionalMessageProducer;
  let relay: TransactionalMessageRelay;
  const refused = new Set<string>();

  @Injectable()
  class Undecided {
    @TransactionCheckHandler({ topic: topic.parked })
    check(): TransactionStatus {
      return TransactionStatus.UNKNOWN;
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await createTopics(Object.values(topic));
    const publisher = new ControlledPublisher();
    publisher.inject = (messages) => (messages.some((m) => refused.has(m.id)) ? new InjectedFailure('refused', { kind: 'message', retriable: false }) : undefined);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          checkImmunityMs: 0,
          publisher,
          relay: { autoStart: false, onDead: 'skip' },
          check: { maxChecks: 1, onExhausted: 'park' },
        }),
      ],
      providers: [Undecided],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
    admin = app.get(TransactionalMessageAdmin);
    producer = app.get(TransactionalMessageProducer);
    relay = app.get(TransactionalMessageRelay);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const commit = (t: string, key: string) => producer.sendMessageInTransaction({ topic: t, key, body: { key } }, () => TransactionStatus.COMMIT).then((r) => r.messageId);

  it('lists, counts and sums up what waits, by status, topic, key and age, page by page in write order', async () => {
    // Two DEAD, one delivered, one parked, one HALF, two waiting to be published.
    const dead = [await commit(topic.orders, 'd1'), await commit(topic.orders, 'd2')];
    dead.forEach((id) => refused.add(id));
    const delivered = await commit(topic.orders, 'ok');
    await relay.drain();
    const parked = await producer.sendHalfMessage({ topic: topic.parked, key: 'p', body: {} });
    await relay.runChecksNow();
    const half = await producer.sendHalfMessage({ topic: topic.orders, key: 'h', body: {}, checkImmunityMs: 3_600_000 });
    const waiting = [await commit(topic.orders, 'w1'), await commit(topic.orders, 'w2')];

    expect(await admin.count()).toEqual({ HALF: 1, COMMITTED: 2, DELAYED: 0, DEAD: 2, CHECK_EXHAUSTED: 1, DISCARDED: 0 });
    const summary = await admin.summary();
    expect(summary.counts).toEqual({ HALF: 1, COMMITTED: 2, DELAYED: 0, DEAD: 2, CHECK_EXHAUSTED: 1, DISCARDED: 0 });
    expect(summary.relayLagMs).toBeGreaterThanOrEqual(0);

    const all: string[] = [];
    let after: string | undefined;
    do {
      const page = await admin.list({}, { limit: 2, after });
      expect(page.messages.length).toBeLessThanOrEqual(2);
      all.push(...page.messages.map((m) => m.id));
      after = page.next;
    } while (after);
    expect(all).toEqual([...dead, parked, half, ...waiting]);
    expect(all).not.toContain(delivered);

    expect((await admin.list({ status: 'DEAD' })).messages.map((m) => [m.id, m.lastError, m.bodyBytes])).toEqual(dead.map((id, i) => [id, 'refused', `{"key":"d${i + 1}"}`.length]));
    expect((await admin.list({ topic: topic.parked })).messages.map((m) => [m.id, m.status])).toEqual([[parked, 'CHECK_EXHAUSTED']]);
    expect((await admin.list({ key: 'w2' })).messages.map((m) => m.id)).toEqual([waiting[1]]);
    expect((await admin.list({ olderThanMs: 3_600_000 })).messages).toEqual([]);
    expect(await admin.count({ status: ['DEAD', 'HALF'], topic: topic.orders })).toEqual({ DEAD: 2, HALF: 1 });

    const found = await admin.get(parked);
    expect(found?.message.status).toBe(MessageStatus.CHECK_EXHAUSTED);
    expect(found?.checks.map((c) => [c.checkNumber, c.result])).toEqual([[1, 'UNKNOWN']]);
    expect(await admin.get(randomUUID())).toBeNull();
  });

  it('acts: commits a parked message, rolls back a half one, replays DEAD ones by topic, purges what was given up', async () => {
    const [parked] = (await admin.list({ status: 'CHECK_EXHAUSTED' })).messages;
    await admin.commit(parked.id);
    const [half] = (await admin.list({ status: 'HALF' })).messages;
    await admin.rollback(half.id);
    refused.clear();
    expect(await admin.replayDead({ topic: topic.orders })).toBe(2);
    expect(await admin.count({ status: 'DEAD' })).toEqual({ DEAD: 0 });
    expect(await relay.drain()).toBe(5); // the parked one, the two replayed, the two waiting
    expect(await admin.count()).toEqual({ HALF: 0, COMMITTED: 0, DELAYED: 0, DEAD: 0, CHECK_EXHAUSTED: 0, DISCARDED: 0 });

    const doomed = await commit(topic.orders, 'doomed');
    refused.add(doomed);
    await relay.drain();
    expect(await producer.discard(doomed)).toBe(true);
    expect(await admin.purge({ status: MessageStatus.DISCARDED })).toBe(1);
    expect(await producer.getMessage(doomed)).toBeNull();
  });

  it('refuses what it cannot do cheaply or safely, with the reason', async () => {
    await expect(admin.list({ status: 'DELIVERED' as never })).rejects.toThrow(InvalidMessageError);
    await expect(admin.list({ status: 'DELIVERED' as never })).rejects.toThrow(/finished messages, DELIVERED and ROLLED_BACK, are not listed/);
    await expect(admin.purge({ status: MessageStatus.HALF })).rejects.toThrow(/a HALF, COMMITTED or DELAYED message is ended or delivered, not purged/);
    await expect(admin.list({}, { limit: 501 })).rejects.toThrow(/page limit 501/);
  });

  if (kind === 'postgres') {
    it('every list and count reads an index, never the delivered history (EXPLAIN with 20,000 delivered rows)', async () => {
      await db.dataSource.query(
        `INSERT INTO transactional_message (id, producer_group, topic, message_key, body, content_type, status, created_at, check_immunity_ms, delivered_at)
         SELECT gen_random_uuid(), 'shop', 'history', 'k' || g, '\\x7b7d', 'application/json', 'DELIVERED', now(), 0, now() FROM generate_series(1, 20000) g`,
      );
      await db.dataSource.query('ANALYZE transactional_message');
      const statements: Array<[string, unknown[]]> = [];
      const recorder = { query: async (sql: string, params: unknown[]) => (statements.push([sql, params]), []) } as unknown as EntityManager;
      const store = app.get(TransactionalMessageEngine).adminStore;
      for (const status of [MessageStatus.HALF, MessageStatus.COMMITTED, MessageStatus.DEAD, MessageStatus.CHECK_EXHAUSTED, MessageStatus.DISCARDED]) {
        await store.list(recorder, status, { topic: topic.orders }, 0, 50);
        await store.count(recorder, status, {});
        await store.oldestAgeMs(recorder, status);
      }
      for (const [sql, params] of statements) {
        const plan = (await db.dataSource.query(`EXPLAIN ${sql}`, params)).map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n');
        expect(plan).not.toMatch(/Seq Scan on transactional_message/);
      }
    });
  }
});
