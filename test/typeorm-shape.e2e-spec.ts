import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { DataSource, EntitySubscriberInterface, QueryRunner } from 'typeorm';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { ShopOrder } from './support/shop.fixture.js';

/**
 * What the library relies on in TypeORM, node-postgres and pg-pool, each checked on the versions
 * installed (the integration tests run on TypeORM 1.x and 0.3.x): if one of these libraries
 * changes shape, this file fails before the guarantee that depends on it quietly stops holding.
 *
 * - the query guard (src/context/query-guard.ts): every query that is not bound to a QueryRunner
 *   asks the DataSource for one through `dataSource.createQueryRunner` (the library's one patch);
 *   a `beforeQuery` subscriber that throws stops the query before it is sent (the fence);
 * - prepared statements (src/store/dialects/prepared-sql.ts): `QueryRunner.connect()` gives the
 *   node-postgres client, and its `query({ name, text, values })` prepares the statement;
 * - the connection guard (src/engine/pg-connection-guard.ts): pg-pool emits `acquire` for
 *   every checkout while its own `error` listener is still on the connection.
 */
describe.each(DATABASE_KINDS)('what the library relies on in TypeORM, on %s', (kind) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder], migrate: false });
  });

  afterAll(() => db?.drop());

  /** Counts the calls of `dataSource.createQueryRunner` made while `work` runs. */
  async function runnersCreatedBy(dataSource: DataSource, work: () => Promise<unknown>): Promise<number> {
    const original = dataSource.createQueryRunner;
    let created = 0;
    dataSource.createQueryRunner = function (this: DataSource, ...args: Parameters<DataSource['createQueryRunner']>) {
      created++;
      return original.apply(this, args);
    };
    try {
      await work();
    } finally {
      dataSource.createQueryRunner = original;
    }
    return created;
  }

  it.each([
    ['dataSource.query()', (ds: DataSource) => ds.query('SELECT 1 AS one')],
    ['dataSource.manager.find()', (ds: DataSource) => ds.manager.find(ShopOrder)],
    ["a repository's save()", (ds: DataSource) => ds.getRepository(ShopOrder).save({ id: randomUUID(), amount: 1 })],
    ["a repository's delete()", (ds: DataSource) => ds.getRepository(ShopOrder).delete({ id: randomUUID() })],
    ['a query builder', (ds: DataSource) => ds.getRepository(ShopOrder).createQueryBuilder('o').getMany()],
    ['dataSource.transaction()', (ds: DataSource) => ds.transaction(() => Promise.resolve())],
  ])('%s asks the DataSource for a query runner (the query guard refuses there)', async (_name, work) => {
    expect(await runnersCreatedBy(db.dataSource, () => work(db.dataSource))).toBeGreaterThanOrEqual(1);
  });

  it("a query of a transaction's own manager does not (so the guard lets it through)", async () => {
    await db.dataSource.transaction(async (manager) => {
      expect(await runnersCreatedBy(db.dataSource, () => manager.getRepository(ShopOrder).save({ id: randomUUID(), amount: 2 }))).toBe(0);
    });
  });

  it('a beforeQuery subscriber that throws stops the query before it is sent, with its own error, naming the runner', async () => {
    const refused = new Error('refused by the fence');
    const seen: QueryRunner[] = [];
    const fence = {
      beforeQuery(event: { queryRunner: QueryRunner; query: string }) {
        if (event.query.startsWith('INSERT')) {
          seen.push(event.queryRunner);
          throw refused;
        }
      },
    } as EntitySubscriberInterface;
    db.dataSource.subscribers.push(fence);
    const id = randomUUID();
    try {
      const runner = db.dataSource.createQueryRunner();
      try {
        await runner.connect();
        await expect(runner.manager.getRepository(ShopOrder).insert({ id, amount: 3 })).rejects.toBe(refused);
        expect(seen).toEqual([runner]);
      } finally {
        await runner.release();
      }
    } finally {
      db.dataSource.subscribers.splice(db.dataSource.subscribers.indexOf(fence), 1);
    }
    expect(await db.dataSource.getRepository(ShopOrder).findOneBy({ id })).toBeNull();
  });

  if (kind !== 'postgres') return;

  it('node-postgres: QueryRunner.connect() gives the client, and query({ name, text, values }) prepares the statement on it', async () => {
    const runner = db.dataSource.createQueryRunner();
    try {
      const client = (await runner.connect()) as { query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }> };
      const name = `tm_shape_${randomUUID().slice(0, 8)}`;
      const result = await client.query({ name, text: 'SELECT $1::int + 1 AS two', values: [1] });
      expect(result.rows).toEqual([{ two: 2 }]);
      expect(await runner.query('SELECT name FROM pg_prepared_statements WHERE name = $1', [name])).toEqual([{ name }]);
    } finally {
      await runner.release();
    }
  });

  it("pg-pool: emits 'acquire' for every checkout, new or idle, while its own error listener is still on the connection", async () => {
    const pool = (db.dataSource.driver as unknown as { master: import('node:events').EventEmitter & { connect(): Promise<{ release(): void }> } }).master;
    const listenersAtAcquire: number[] = [];
    const onAcquire = (client: { listenerCount(event: string): number }) => void listenersAtAcquire.push(client.listenerCount('error'));
    pool.on('acquire', onAcquire);
    try {
      // More than the pool has idle: some are new connections, the first ones reused.
      const clients = await Promise.all(Array.from({ length: 3 }, () => pool.connect()));
      for (const client of clients) client.release();
      const again = await pool.connect();
      again.release();
    } finally {
      pool.removeListener('acquire', onAcquire);
    }
    expect(listenersAtAcquire).toHaveLength(4);
    for (const count of listenersAtAcquire) expect(count).toBeGreaterThanOrEqual(1);
  });
});
