import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { Injectable } from '@nestjs/common';
import { MessageStatus, PreparedStatementUnavailableError, TransactionalMessage, TransactionContext } from '../src/index.js';
import { eventually } from './support/kafka.js';
import { gate } from './support/relay.fixture.js';
import { createTestDatabase, messageRows, type TestDatabase } from './support/databases.js';
import { createShopApp, OrderService, ShopOrder } from './support/shop.fixture.js';

/** Writes a message of key `key` (and nothing else) in its transaction. */
@Injectable()
class KeyWriter {
  @TransactionalMessage<[string, string]>({ topic: 'order.keyed', key: ([key]) => key, body: ([, label]) => ({ label }) })
  async write(key: string, label: string): Promise<void> {
    void key;
    void label;
  }
}

/**
 * PostgreSQL: the message INSERT every transactional method sends runs as a named prepared
 * statement (`preparedStatements`, default true). The app's DataSource has one connection, so
 * what the test reads from `pg_prepared_statements` is that connection's.
 */
describe('Prepared message INSERT on PostgreSQL', () => {
  let db: TestDatabase;
  const opened: Array<{ app: INestApplicationContext; dataSource: DataSource }> = [];

  beforeAll(async () => {
    db = await createTestDatabase('postgres', { entities: [ShopOrder] });
  });

  afterAll(async () => {
    for (const { app, dataSource } of opened) {
      await app.close();
      if (dataSource.isInitialized) await dataSource.destroy();
    }
    await db?.drop();
  });

  /** An app on its own one-connection DataSource (or `shared`'s), and what TypeORM's logger was given. */
  async function openApp(preparedStatements?: boolean, shared?: DataSource, connections = 1) {
    const logged: unknown[] = [];
    const logger: TypeOrmLogger = {
      logQuery: (query) => void logged.push(query),
      logQueryError: () => undefined,
      logQuerySlow: () => undefined,
      logSchemaBuild: () => undefined,
      logMigration: () => undefined,
      log: () => undefined,
    };
    const dataSource = shared ?? await new DataSource({
      ...db.options,
      entities: [ShopOrder],
      extra: { max: connections },
      logging: true,
      logger,
    } as never).initialize();
    const app = await createShopApp({ ...db, dataSource }, preparedStatements === undefined ? {} : { preparedStatements }, [KeyWriter]);
    opened.push({ app, dataSource });
    const prepared = async (): Promise<Array<{ name: string; statement: string }>> =>
      dataSource.query(`SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'tm\\_%' ORDER BY name`);
    /** How many times the connection ran its prepared statements. */
    const executions = async (): Promise<number> =>
      Number((await dataSource.query(`SELECT COALESCE(SUM(generic_plans + custom_plans), 0) AS n FROM pg_prepared_statements WHERE name LIKE 'tm\\_%'`))[0].n);
    return { app, dataSource, logged, prepared, executions, orders: app.get(OrderService) };
  }

  it('prepares the INSERT once per connection and per statement text, and the messages are stored as without it', async () => {
    const { prepared, orders, logged } = await openApp();
    expect(await prepared()).toEqual([]);
    await orders.pay({ id: 'p-1', amount: 1 });
    const afterOne = await prepared();
    expect(afterOne).toHaveLength(1);
    expect(afterOne[0].statement).toMatch(/^INSERT INTO "transactional_message" \(id, producer_group, topic, message_key/);
    await orders.pay({ id: 'p-2', amount: 2 });
    await orders.pay({ id: 'p-3', amount: 3 });
    // The same text again: the same statement, not one per call.
    expect(await prepared()).toEqual(afterOne);
    const rows = (await messageRows(db)).filter((r) => ['p-1', 'p-2', 'p-3'].includes(r.message_key));
    expect(rows.map((r) => [r.message_key, r.status])).toEqual([
      ['p-1', MessageStatus.COMMITTED],
      ['p-2', MessageStatus.COMMITTED],
      ['p-3', MessageStatus.COMMITTED],
    ]);
    // TypeORM's logger (and its query events) still get the statement as a string, its SQL text.
    const inserts = logged.filter((q): q is string => typeof q === 'string' && q.startsWith('INSERT INTO "transactional_message"'));
    expect(inserts).toHaveLength(3);
    expect(inserts[0]).toBe(afterOne[0].statement);
  });

  it('keeps working on a connection whose prepared INSERT predates a change of the table (a migration run meanwhile)', async () => {
    const { prepared, orders, dataSource } = await openApp();
    await orders.pay({ id: 'm-1', amount: 1 });
    expect(await prepared()).toHaveLength(1);
    await dataSource.query(`ALTER TABLE "transactional_message" ADD COLUMN "probe_column" INTEGER NULL`);
    try {
      await orders.pay({ id: 'm-2', amount: 2 });
      await orders.pay({ id: 'm-3', amount: 3, outcome: 'rollback' });
    } finally {
      await dataSource.query(`ALTER TABLE "transactional_message" DROP COLUMN "probe_column"`);
    }
    await orders.pay({ id: 'm-4', amount: 4 });
    const rows = (await messageRows(db)).filter((r) => String(r.message_key).startsWith('m-'));
    expect(rows.map((r) => [r.message_key, r.status])).toEqual([
      ['m-1', MessageStatus.COMMITTED],
      ['m-2', MessageStatus.COMMITTED],
      ['m-3', MessageStatus.ROLLED_BACK],
      ['m-4', MessageStatus.COMMITTED],
    ]);
  });

  it('a failed business transaction leaves no message and the prepared statement usable', async () => {
    const { orders, prepared } = await openApp();
    await orders.pay({ id: 'f-1', amount: 1 });
    await expect(orders.pay({ id: 'f-2', amount: 2, fail: true })).rejects.toThrow('payment f-2 failed');
    // The same order id again: the business INSERT fails inside the transaction, nothing is kept.
    await expect(orders.pay({ id: 'f-1', amount: 9 })).rejects.toThrow();
    await orders.pay({ id: 'f-3', amount: 3 });
    expect(await prepared()).toHaveLength(1);
    const rows = (await messageRows(db)).filter((r) => String(r.message_key).startsWith('f-'));
    expect(rows.map((r) => r.message_key)).toEqual(['f-1', 'f-3']);
  });

  it('a connection whose server lost the statement (a pooler in transaction mode, DEALLOCATE): a clear error, nothing stored, the next call prepares it again', async () => {
    const { orders, dataSource, prepared } = await openApp();
    await orders.pay({ id: 'd-1', amount: 1 });
    // What a pooler in transaction mode does: the client's next transaction runs on a server
    // session that never saw the statement.
    await dataSource.query('DEALLOCATE ALL');
    const failed = orders.pay({ id: 'd-2', amount: 2 });
    await expect(failed).rejects.toThrow(PreparedStatementUnavailableError);
    await expect(failed).rejects.toThrow(/prepared statement "tm_[0-9a-f]+" does not exist.*Set the module option preparedStatements: false/);
    await orders.pay({ id: 'd-3', amount: 3 });
    expect(await prepared()).toHaveLength(1);
    const rows = (await messageRows(db)).filter((r) => String(r.message_key).startsWith('d-'));
    expect(rows.map((r) => r.message_key)).toEqual(['d-1', 'd-3']);
    expect(await dataSource.query(`SELECT id FROM shop_order WHERE id LIKE 'd-%' ORDER BY id`)).toEqual([{ id: 'd-1' }, { id: 'd-3' }]);
  });

  it('with preparedStatements: false, sends the INSERT as a plain query (for poolers that drop prepared statements)', async () => {
    const { prepared, orders } = await openApp(false);
    await orders.pay({ id: 'n-1', amount: 1 });
    await orders.pay({ id: 'n-2', amount: 2 });
    expect(await prepared()).toEqual([]);
    expect((await messageRows(db)).filter((r) => String(r.message_key).startsWith('n-'))).toHaveLength(2);
  });

  it("still takes the key's lock once PostgreSQL runs the prepared INSERT with its generic plan: a second writer of the key waits for the first's commit", async () => {
    const { app, dataSource } = await openApp(undefined, undefined, 2);
    const writer = app.get(KeyWriter);
    // At least six executions on each of the two connections: from the sixth on, PostgreSQL may
    // plan the prepared statement once for all parameters (a generic plan); the lock must still be
    // taken. Twelve rounds of two writes: a write that finishes before the other starts lets one
    // connection take both (a loaded machine did), so six rounds were not always six each.
    for (let round = 0; round < 12; round++) {
      await Promise.all([writer.write(`w-${round}-a`, 'warm'), writer.write(`w-${round}-b`, 'warm')]);
    }
    const runners = [dataSource.createQueryRunner(), dataSource.createQueryRunner()];
    try {
      for (const runner of runners) {
        const [{ generic, custom }] = await runner.query(
          `SELECT SUM(generic_plans) AS generic, SUM(custom_plans) AS custom FROM pg_prepared_statements WHERE name LIKE 'tm\\_%'`,
        );
        expect(Number(generic) + Number(custom)).toBeGreaterThanOrEqual(6);
        expect(Number(generic)).toBeGreaterThan(0);
      }
    } finally {
      for (const runner of runners) await runner.release();
    }
    const context = app.get(TransactionContext);
    const release = gate();
    const firstWritten = gate();
    // Transaction A writes key K's message and stays open; B writes a message of K too.
    const first = context.runInTransaction(async () => {
      await writer.write('k', 'first');
      firstWritten.open();
      await release.wait;
    });
    await firstWritten.wait;
    let secondDone = false;
    const second = writer.write('k', 'second').finally(() => (secondDone = true));
    // B's INSERT waits on the key's advisory lock (seen from another connection), not done.
    await eventually('the second writer waiting on the key lock', async () => {
      const [{ n }] = await db.dataSource.query(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`);
      return Number(n) === 1;
    });
    expect(secondDone).toBe(false);
    release.open();
    await first;
    await second;
    // Numbered (seq) in commit order: A's message first.
    const rows = (await messageRows(db)).filter((r) => r.message_key === 'k');
    expect(rows.map((r) => JSON.parse(Buffer.from(r.body).toString()).label)).toEqual(['first', 'second']);
  });

  it('an instance with preparedStatements: false on a DataSource another instance prepares on still sends plain queries', async () => {
    const preparing = await openApp();
    const plain = await openApp(false, preparing.dataSource);
    await preparing.orders.pay({ id: 's-1', amount: 1 });
    expect(await preparing.executions()).toBe(1);
    await plain.orders.pay({ id: 's-2', amount: 2 });
    await plain.orders.pay({ id: 's-3', amount: 3 });
    expect(await preparing.executions()).toBe(1);
    await preparing.orders.pay({ id: 's-4', amount: 4 });
    expect(await preparing.executions()).toBe(2);
    expect((await messageRows(db)).filter((r) => String(r.message_key).startsWith('s-')).map((r) => r.message_key)).toEqual(['s-1', 's-2', 's-3', 's-4']);
  });
});
