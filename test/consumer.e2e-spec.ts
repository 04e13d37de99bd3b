import 'reflect-metadata';
import { Controller, type INestMicroservice } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { Column, Entity, PrimaryGeneratedColumn, type EntityManager } from 'typeorm';
import {
  Inbox,
  MessageInfo,
  TagFilter,
  TransactionalInbox,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionContext,
  transactionalMessageInboxMigrations,
  type ConsumedMessage,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, listenKafkaMicroservice, testKafka, uniqueTopic } from './support/kafka.js';

@Entity('consumer_effect')
class Effect {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 64 })
  handler!: string;

  @Column({ type: 'varchar', length: 64 })
  messageId!: string;
}

describe.each(DATABASE_KINDS)('consumer side on %s: inbox, tag filtering, message info (real Kafka)', (kind) => {
  const topic = { paid: uniqueTopic(`${kind}.c-paid`), flaky: uniqueTopic(`${kind}.c-flaky`), shipped: uniqueTopic(`${kind}.c-shipped`) };
  let db: TestDatabase;
  let microservice: INestMicroservice;
  const seen: ConsumedMessage[] = [];
  let flakyFailures = 0;

  @Controller()
  class OrderEvents {
    constructor(private readonly tx: TransactionContext) {}

    /** Effect once per message, only for 'paid || refunded'; produces a message in the same transaction. */
    @EventPattern<string>(topic.paid)
    @Inbox({ consumer: 'logistics', tags: 'paid || refunded' })
    async onPaid(@Payload() body: { order: string }, @MessageInfo() info: ConsumedMessage): Promise<void> {
      seen.push(info);
      await this.tx.getRepository(Effect).insert({ handler: 'logistics', messageId: info.id! });
      await this.ship(body.order);
    }

    /** A second consumer of the same topic: deduplicated separately. */
    @EventPattern<string>(topic.paid)
    @Inbox()
    async alsoOnPaid(@MessageInfo() info: ConsumedMessage): Promise<void> {
      await this.tx.getRepository(Effect).insert({ handler: 'credit', messageId: info.id! });
    }

    /** Fails the first two times: the transport redelivers; the effect still happens once. */
    @EventPattern<string>(topic.flaky)
    @Inbox({ consumer: 'flaky' })
    async onFlaky(@MessageInfo() info: ConsumedMessage): Promise<void> {
      await this.tx.getRepository(Effect).insert({ handler: 'flaky', messageId: info.id! });
      if (flakyFailures++ < 2) throw new Error('downstream hiccup');
    }

    /** Tag filtering without the inbox. */
    @EventPattern<string>(topic.shipped)
    @TagFilter('express')
    async onShipped(@MessageInfo() info: ConsumedMessage): Promise<void> {
      await this.tx.runInTransaction(() => this.tx.getRepository(Effect).insert({ handler: 'express', messageId: info.id ?? 'none' }));
    }

    @TransactionalMessage<[string]>({ topic: topic.shipped, key: ([order]) => order, tags: 'express', body: ([order]) => ({ order }) })
    async ship(order: string): Promise<void> {
      void order;
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [Effect] });
    await db.dataSource.runMigrations({ transaction: 'none' }).catch(() => undefined);
    for (const Migration of transactionalMessageInboxMigrations()) await new Migration().up(db.dataSource.createQueryRunner());
    await createTopics(Object.values(topic));
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          relay: { enabled: false },
          inbox: { enabled: true },
        }),
      ],
      controllers: [OrderEvents],
    }).compile();
    moduleRef.useLogger(false);
    microservice = await listenKafkaMicroservice(moduleRef, `tm-test-${kind}`, {
      consumer: { retry: { retries: 10, initialRetryTime: 50, maxRetryTime: 500 } },
      run: { autoCommit: true },
    });
  });

  afterAll(async () => {
    await microservice?.close();
    await db?.drop();
  });

  /** Sends raw records, as the relay would, with the library's headers. */
  async function send(t: string, records: Array<{ id: string; key?: string; tags?: string; body: unknown; properties?: Record<string, string> }>) {
    const producer = testKafka().producer();
    await producer.connect();
    try {
      await producer.send({
        topic: t,
        messages: records.map((r) => ({
          key: r.key ?? null,
          value: JSON.stringify(r.body),
          headers: {
            'tm-message-id': r.id,
            'tm-producer-group': 'shop',
            'tm-content-type': 'application/json',
            ...(r.key ? { 'tm-key': r.key } : {}),
            ...(r.tags ? { 'tm-tags': r.tags } : {}),
            ...r.properties,
          },
        })),
      });
    } finally {
      await producer.disconnect();
    }
  }
  const effects = (handler: string) => db.dataSource.getRepository(Effect).findBy({ handler });

  it('a redelivered message has its effect once per consumer; tags filter; message info is typed', async () => {
    const [paid, refunded, shippedTag] = [randomUUID(), randomUUID(), randomUUID()];
    const order = `order-${randomUUID()}`;
    const paidRecord = { id: paid, key: order, tags: 'paid,vip', body: { order }, properties: { channel: 'web' } };
    // The same record three times (a relay that died before marking, a consumer rebalance...).
    await send(topic.paid, [paidRecord, paidRecord, { id: refunded, key: order, tags: 'refunded', body: { order } }]);
    await send(topic.paid, [paidRecord, { id: shippedTag, key: order, tags: 'shipped', body: { order } }]);

    await eventually('credit saw all three distinct messages', async () => (await effects('credit')).length === 3);
    await eventually('logistics handled paid and refunded', async () => (await effects('logistics')).length === 2);
    expect((await effects('logistics')).map((e) => e.messageId).sort()).toEqual([paid, refunded].sort());
    expect((await effects('credit')).map((e) => e.messageId).sort()).toEqual([paid, refunded, shippedTag].sort());
    // Each paid/refunded message produced exactly one message, in the handler's transaction.
    const produced = (await messageRows(db)).filter((r) => r.topic === topic.shipped);
    expect(produced).toHaveLength(2);
    expect(seen.find((s) => s.id === paid)).toEqual({
      id: paid,
      producerGroup: 'shop',
      key: order,
      tags: ['paid', 'vip'],
      properties: { channel: 'web' },
      contentType: 'application/json',
    });
  });

  it('a failing handler rolls back its effect and inbox record; the transport retries; the effect happens once', async () => {
    const id = randomUUID();
    await send(topic.flaky, [{ id, body: {} }]);
    await eventually('the third attempt succeeded', async () => (await effects('flaky')).length === 1);
    expect(flakyFailures).toBe(3);
    expect((await effects('flaky'))[0].messageId).toBe(id);
  });

  it('@TagFilter without the inbox skips records whose tags do not match', async () => {
    const [express, standard] = [randomUUID(), randomUUID()];
    await send(topic.shipped, [
      { id: standard, tags: 'standard', body: {} },
      { id: express, tags: 'express,fragile', body: {} },
    ]);
    await eventually('the express record', async () => (await effects('express')).some((e) => e.messageId === express));
    expect((await effects('express')).some((e) => e.messageId === standard)).toBe(false);
  });

  it('TransactionalInbox.process as a plain call: once per (consumer, id), also when called concurrently', async () => {
    const inbox = microservice.get(TransactionalInbox);
    const id = randomUUID();
    const runs: string[] = [];
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        inbox.process('plain', id, async (manager) => {
          runs.push(`run ${i}`);
          await manager.getRepository(Effect).insert({ handler: 'plain', messageId: id });
          return i;
        }),
      ),
    );
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(runs).toHaveLength(1);
    expect(await effects('plain')).toHaveLength(1);
    await expect(inbox.process('plain', '', async () => 1)).rejects.toThrow(/inbox message id ""/);
  });

  it('a message id in upper case is the same message: its effect runs once', async () => {
    const inbox = microservice.get(TransactionalInbox);
    const id = randomUUID();
    const effect = (manager: EntityManager) => manager.getRepository(Effect).insert({ handler: 'case', messageId: id });
    expect((await inbox.process('case', id.toUpperCase(), effect)).duplicate).toBe(false);
    expect((await inbox.process('case', id, effect)).duplicate).toBe(true);
    expect((await inbox.process('case', `${id.slice(0, 8).toUpperCase()}${id.slice(8)}`, effect)).duplicate).toBe(true);
    expect(await effects('case')).toHaveLength(1);
  });

  it('twenty concurrent deliveries of one id whose first run throws: one effect, the one injected error, no deadlock reaches the caller', async () => {
    const inbox = microservice.get(TransactionalInbox);
    const id = randomUUID();
    let runs = 0;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        inbox.process('contended', id, async (manager) => {
          if (runs++ === 0) {
            // Hold the record a moment, so that the others wait on it, then fail.
            await new Promise((resolve) => setTimeout(resolve, 100));
            throw new Error('the first run fails (injected)');
          }
          await manager.getRepository(Effect).insert({ handler: 'contended', messageId: id });
          return runs;
        }),
      ),
    );
    const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [String((o.reason as Error)?.message ?? o.reason)] : []));
    expect(errors).toEqual(['the first run fails (injected)']);
    const done = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    expect(done.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(done.filter((r) => r.duplicate)).toHaveLength(18);
    expect(await effects('contended')).toHaveLength(1);
  });

  it('inbox rows are pruned after inbox.retentionMs (then a redelivery would run again)', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          relay: { enabled: false },
          inbox: { enabled: true, retentionMs: 0, pruneIntervalMs: 20 },
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    try {
      const inbox = app.get(TransactionalInbox);
      const id = randomUUID();
      expect((await inbox.process('pruned', id, async () => 1)).duplicate).toBe(false);
      const q = kind === 'mariadb' ? '`' : '"';
      await eventually('the inbox row pruned', async () =>
        (await db.dataSource.query(`SELECT 1 FROM ${q}transactional_message_inbox${q} WHERE consumer = 'pruned'`)).length === 0,
      );
      expect((await inbox.process('pruned', id, async () => 2)).duplicate).toBe(false);
    } finally {
      await app.close();
    }
  });
});
