import 'reflect-metadata';
import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DataSource, type DataSourceOptions } from 'typeorm';
import {
  ConnectionAcquireTimeoutError,
  MessageStatus,
  TransactionCheckHandler,
  TransactionContext,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { createTestDatabase, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, FAST_CHECK, FAST_RELAY } from './support/relay.fixture.js';
import { OrderService, ShopOrder } from './support/shop.fixture.js';

/** A bounded wait for something that used to hang forever: fails with `what` instead of hanging the suite. */
function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)));
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

describe.each(['postgres', 'mariadb'] as const)("the library's connections on %s", (kind) => {
  const topic = { one: uniqueTopic(`${kind}.pool-of-one`), cap: uniqueTopic(`${kind}.cap`) };
  let db: TestDatabase;
  let consumer: TestConsumer;
  const opened: Array<{ app?: INestApplicationContext; ds: DataSource }> = [];

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    await createTopics(Object.values(topic));
    consumer = await new TestConsumer(Object.values(topic)).start();
  });

  afterEach(async () => {
    // Bounded: without the fixes these tests are about, a pool can stay held forever.
    for (const { app, ds } of opened.splice(0)) {
      await within('closing the application', 15_000, app?.close() ?? Promise.resolve()).catch(() => undefined);
      if (ds.isInitialized) await within('destroying the DataSource', 15_000, ds.destroy()).catch(() => undefined);
    }
  });

  afterAll(async () => {
    await consumer?.stop();
    await db?.drop();
  });

  /** Another DataSource on the test database with a pool of `size` connections. */
  async function pooled(size: number): Promise<DataSource> {
    const extra = kind === 'postgres' ? { max: size } : { connectionLimit: size };
    const ds = new DataSource({ ...db.options, entities: [ShopOrder], extra } as DataSourceOptions);
    await ds.initialize();
    opened.push({ ds });
    return ds;
  }

  async function boot(ds: DataSource, providers: Function[], options: Partial<TransactionalMessageModuleOptions> = {}): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: ds,
          producerGroup: `shop-${randomUUID().slice(0, 8)}`,
          checkImmunityMs: 0,
          publisher: new ControlledPublisher(),
          ...options,
          relay: { ...FAST_RELAY, ...options.relay },
          check: { ...FAST_CHECK, ...options.check },
        }),
      ],
      providers: providers as never[],
    }).compile();
    moduleRef.useLogger(false);
    const app = await within('the boot', 20_000, moduleRef.init());
    opened[opened.findIndex((o) => o.ds === ds)].app = app;
    return app;
  }

  it('a pool of one connection: the boot completes with a warning, business calls and the relay share it', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      const ds = await pooled(1);
      const app = await boot(ds, [OrderService], { relay: { maxConnections: 1 } });
      expect(warn.mock.calls.map(([text]) => String(text)).some((text) => text.includes("the DataSource's pool has 1"))).toBe(true);
      const id = randomUUID();
      await within('a decorated call', 20_000, app.get(OrderService).pay({ id, amount: 1 }));
      const messageId = app.get(OrderService).lastMessageId;
      const producer = app.get(TransactionalMessageProducer);
      const explicit = await within('the explicit API', 20_000, producer.sendMessageInTransaction({ topic: topic.one, key: id, body: {} }, () => TransactionStatus.COMMIT));
      await consumer.waitFor('the explicit message, published by the relay', () => consumer.of(topic.one).some((r) => r.headers['tm-message-id'] === explicit.messageId));
      await eventually('the decorated message delivered', async () => (await producer.getMessage(messageId))?.status === MessageStatus.DELIVERED);
    } finally {
      warn.mockRestore();
    }
  });

  it('callers holding every pooled connection in runInTransaction and calling the explicit API all complete (it joins them)', async () => {
    const ds = await pooled(5);
    const app = await boot(ds, [], { relay: { enabled: false } });
    const producer = app.get(TransactionalMessageProducer);
    const context = app.get(TransactionContext);
    const ids = await Promise.all(Array.from({ length: 10 }, () => producer.sendHalfMessage({ topic: topic.one, body: {} })));
    await within(
      '10 transactions on a pool of 5, each committing a half message',
      20_000,
      Promise.all(
        ids.map((id) =>
          context.runInTransaction(async (manager) => {
            await manager.getRepository(ShopOrder).insert({ id: randomUUID(), amount: 1 });
            await producer.commit(id);
          }),
        ),
      ),
    );
    for (const id of ids) expect((await producer.getMessage(id))?.status).toBe(MessageStatus.COMMITTED);
  });

  it('plain dataSource.transaction() callers that exhaust the pool get ConnectionAcquireTimeoutError, never a hang; with { manager } they complete', async () => {
    const ds = await pooled(3);
    const app = await boot(ds, [], { relay: { enabled: false }, acquireTimeoutMs: 500 });
    const producer = app.get(TransactionalMessageProducer);
    const ids = await Promise.all(Array.from({ length: 6 }, () => producer.sendHalfMessage({ topic: topic.one, body: {} })));
    const results = await within(
      '6 plain transactions on a pool of 3, each committing without its manager',
      20_000,
      Promise.allSettled(ids.map((id) => ds.transaction(() => producer.commit(id)))),
    );
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    expect(refused.length).toBeGreaterThan(0);
    for (const error of refused) {
      expect(error).toBeInstanceOf(ConnectionAcquireTimeoutError);
      expect(String(error.message)).toMatch(/pool \(size 3\).*Pass that transaction's EntityManager \(\{ manager \}\)/s);
    }
    // A refused commit changed nothing; with the manager, every commit goes through.
    await within(
      'the same with { manager }',
      20_000,
      Promise.all(ids.map((id) => ds.transaction((manager) => producer.commit(id, { manager })))),
    );
    for (const id of ids) expect((await producer.getMessage(id))?.status).toBe(MessageStatus.COMMITTED);
  });

  it('the relay, the checks and pruning never hold more than relay.maxConnections pooled connections at once', async () => {
    const ds = await pooled(10);
    let held = 0;
    let most = 0;
    const counter = (ds.driver as unknown as { master?: { on(e: string, f: () => void): void }; pool?: { on(e: string, f: () => void): void } });
    const pool = kind === 'postgres' ? counter.master! : counter.pool!;
    pool.on('acquire', () => (most = Math.max(most, ++held)));
    pool.on('release', () => held--);
    @Injectable()
    class QuickChecker {
      @TransactionCheckHandler({ topic: topic.cap })
      async check(): Promise<TransactionStatus> {
        await new Promise((resolve) => setImmediate(resolve));
        return TransactionStatus.COMMIT;
      }
    }
    const producerGroup = `cap-${randomUUID().slice(0, 8)}`;
    // The earlier tests of this file wrote to the same table, each as a producer group of its own;
    // one table serves one producer group (a relay refuses a table with another group's live
    // messages), so what they left waiting goes first.
    const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);
    await db.dataSource.query(`DELETE FROM ${q(db.tableName)} WHERE ${q('status')} IN ('HALF', 'COMMITTED')`);
    const writer = await boot(ds, [], { producerGroup, relay: { enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await writer.get(TransactionalMessageProducer).sendHalfMessage({ topic: topic.cap, key: `k${i % 8}`, body: { i } }));
    await writer.close();
    opened[0].app = undefined;
    most = 0;
    held = 0;
    const app = await boot(ds, [QuickChecker], { producerGroup, relay: { maxConnections: 2 }, check: { concurrency: 8 } });
    await consumer.waitFor('every checked message published', () => ids.every((id) => consumer.of(topic.cap).some((r) => r.headers['tm-message-id'] === id)));
    await eventually('all delivered', async () => (await messageRows(db)).filter((r) => ids.includes(r.id) && r.status === MessageStatus.DELIVERED).length === ids.length);
    await app.close();
    opened[0].app = undefined;
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2);
  });
});
