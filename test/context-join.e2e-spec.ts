import 'reflect-metadata';
import { Global, Injectable, Logger, Module, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  TransactionContext,
  TransactionalMessage,
  TransactionalMessageModule,
  type QueriesOutsideTransactionMode,
} from '../src/index.js';
import { QueryOutsideTransactionError } from '../src/errors/query-outside-transaction.error.js';
import { TransactionContextEndedError } from '../src/errors/transaction-context-ended.error.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { OrderService, ShopOrder } from './support/shop.fixture.js';

const DATA_SOURCE = 'TEST_DATA_SOURCE';

// @nestjs-cls/transactional is CommonJS and requires the ESM @nestjs/common; Jest's ESM runtime
// refuses that while this file's own imports are still evaluating (plain Node does not), so the
// cls fixture is loaded once they are done.
const { ClsModule, ClsPluginTransactional, TransactionalAdapterTypeOrm, CheckoutService } = await import(
  './support/cls.fixture.js'
);

/** Business code that wrongly writes through the DataSource's own manager inside a transactional method. */
@Injectable()
class CarelessService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly tx: TransactionContext,
  ) {}

  /** Leaves a write through the transaction's own manager to run once `gate` opens: after the method returned. */
  @TransactionalMessage<[string, Promise<void>, (late: Promise<unknown>) => void]>({ topic: 'order.careless', key: ([id]) => id, body: ([id]) => ({ id }) })
  async writeLater(id: string, gate: Promise<void>, hand: (late: Promise<unknown>) => void): Promise<void> {
    const manager = this.tx.manager;
    hand(gate.then(() => manager.getRepository(ShopOrder).insert({ id, amount: 1 })));
  }

  @TransactionalMessage<[string, boolean]>({ topic: 'order.careless', key: ([id]) => id, body: ([id]) => ({ id }) })
  async write(id: string, failAfter: boolean): Promise<void> {
    await this.dataSource.getRepository(ShopOrder).insert({ id, amount: 1 });
    if (failAfter) throw new Error('failed after an outside write');
  }

  @TransactionalMessage<[string]>({ topic: 'order.careless', key: ([id]) => id, body: ([id]) => ({ id }) })
  async read(id: string): Promise<void> {
    await this.dataSource.getRepository(ShopOrder).findOneBy({ id });
  }
}

describe.each(DATABASE_KINDS)('joining @nestjs-cls/transactional on %s', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    @Global()
    @Module({ providers: [{ provide: DATA_SOURCE, useValue: db.dataSource }], exports: [DATA_SOURCE] })
    class DatabaseModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [
        DatabaseModule,
        ClsModule.forRoot({
          global: true,
          plugins: [
            new ClsPluginTransactional({
              imports: [DatabaseModule],
              adapter: new TransactionalAdapterTypeOrm({ dataSourceToken: DATA_SOURCE }),
            }),
          ],
        }),
        TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'shop', relay: { enabled: false } }),
      ],
      providers: [OrderService, CheckoutService],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const exists = async (id: string) => (await db.dataSource.getRepository(ShopOrder).findOneBy({ id })) !== null;
  const messagesOf = async (key: string) => (await messageRows(db)).filter((row) => row.message_key === key);

  it('a decorated call inside @Transactional() joins it: both commit together', async () => {
    const [cart, order] = [randomUUID(), randomUUID()];
    await app.get(CheckoutService).checkout(cart, order, false);
    expect(await exists(cart)).toBe(true);
    expect(await exists(order)).toBe(true);
    expect(await messagesOf(order)).toHaveLength(1);
  });

  it('a decorated call inside @Transactional() joins it: a later failure undoes the message too', async () => {
    const [cart, order] = [randomUUID(), randomUUID()];
    await expect(app.get(CheckoutService).checkout(cart, order, true)).rejects.toThrow('checkout failed');
    expect(await exists(cart)).toBe(false);
    expect(await exists(order)).toBe(false);
    expect(await messagesOf(order)).toHaveLength(0);
  });

  it('a decorated call that fails inside @Transactional() leaves nothing behind even when the caller swallows the error and commits', async () => {
    const [cart, order] = [randomUUID(), randomUUID()];
    expect(await app.get(CheckoutService).checkoutSwallowing(cart, order)).toBe(`swallowed: payment ${order} failed`);
    // The caller's own write commits; the failed call's business row was undone with it (a savepoint).
    expect(await exists(cart)).toBe(true);
    expect(await exists(order)).toBe(false);
    expect(await messagesOf(order)).toHaveLength(0);
  });

  it('a transaction the decorator opens is the one TransactionHost.tx sees', async () => {
    const [ok, failed] = [randomUUID(), randomUUID()];
    const txid = await app.get(CheckoutService).clearCart(ok, false);
    expect(await exists(ok)).toBe(true);
    expect(await messagesOf(ok)).toHaveLength(1);
    if (kind === 'postgres') {
      // The message row was written by the same database transaction as the business row.
      const [row] = await db.dataSource.query(
        `SELECT xmin::text AS xmin FROM transactional_message WHERE message_key = $1`,
        [ok],
      );
      expect(row.xmin).toBe(txid);
    }
    await expect(app.get(CheckoutService).clearCart(failed, true)).rejects.toThrow('clear failed');
    expect(await exists(failed)).toBe(false);
    expect(await messagesOf(failed)).toHaveLength(0);
  });
});

describe.each(DATABASE_KINDS)('queries that would escape the transaction, on %s', (kind) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
  });

  afterAll(async () => {
    await db?.drop();
  });

  const withApp = async (mode: QueriesOutsideTransactionMode | undefined, run: (app: INestApplicationContext) => Promise<void>) => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          relay: { enabled: false },
          ...(mode ? { queriesOutsideTransaction: mode } : {}),
        }),
      ],
      providers: [CarelessService, { provide: DataSource, useValue: db.dataSource }],
    }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    try {
      await run(app);
    } finally {
      await app.close();
    }
  };
  const exists = async (id: string) => (await db.dataSource.getRepository(ShopOrder).findOneBy({ id })) !== null;
  const messagesOf = async (key: string) => (await messageRows(db)).filter((row) => row.message_key === key);

  it("default 'error': a write through the DataSource's manager is refused, nothing is stored", async () => {
    await withApp(undefined, async (app) => {
      const id = randomUUID();
      await expect(app.get(CarelessService).write(id, false)).rejects.toThrow(QueryOutsideTransactionError);
      await expect(app.get(CarelessService).write(id, false)).rejects.toThrow(/Use TransactionContext.manager/);
      expect(await exists(id)).toBe(false);
      expect(await messagesOf(id)).toHaveLength(0);
    });
  });

  it("default 'error': a read through the DataSource's manager is refused too", async () => {
    await withApp(undefined, async (app) => {
      await expect(app.get(CarelessService).read(randomUUID())).rejects.toThrow(QueryOutsideTransactionError);
    });
  });

  it("'warn': the query runs, with one warning, outside the transaction (inside it on SQLite's single connection)", async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await withApp('warn', async (app) => {
        const [committed, rolledBack] = [randomUUID(), randomUUID()];
        await app.get(CarelessService).write(committed, false);
        await expect(app.get(CarelessService).write(rolledBack, true)).rejects.toThrow('failed after an outside write');
        expect(await exists(committed)).toBe(true);
        expect(await messagesOf(committed)).toHaveLength(1);
        // PostgreSQL and MariaDB: the write ran on another connection and escaped the rollback.
        // SQLite: a DataSource has one connection, so the write landed inside the open transaction.
        expect(await exists(rolledBack)).toBe(kind !== 'sqlite');
        expect(await messagesOf(rolledBack)).toHaveLength(0);
      });
      const warnings = warn.mock.calls.filter(([text]) => String(text).includes('CarelessService.write'));
      expect(warnings).toHaveLength(1);
    } finally {
      warn.mockRestore();
    }
  });

  it("a write through the transaction's own manager sent after the transaction ended is refused, also under 'allow'", async () => {
    await withApp('allow', async (app) => {
      const id = randomUUID();
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      let late!: Promise<unknown>;
      await app.get(CarelessService).writeLater(id, gate, (p) => {
        late = p;
        p.catch(() => undefined);
      });
      open();
      const error = await late.then(
        () => undefined,
        (e: unknown) => e,
      );
      // SQLite: the one connection is still open and would run it in autocommit (or inside the
      // next transaction): the fence refuses it. PostgreSQL, MariaDB: the runner was released.
      expect(error).toBeInstanceOf(kind === 'sqlite' ? TransactionContextEndedError : Error);
      expect(await exists(id)).toBe(false);
      expect(await messagesOf(id)).toHaveLength(1);
    });
  });

  it('the guard is removed when the application closes', async () => {
    const original = db.dataSource.createQueryRunner;
    const subscribers = db.dataSource.subscribers.length;
    await withApp(undefined, async () => {
      expect(db.dataSource.createQueryRunner).not.toBe(original);
      expect(db.dataSource.subscribers).toHaveLength(subscribers + 1);
    });
    expect(db.dataSource.createQueryRunner).toBe(original);
    expect(db.dataSource.subscribers).toHaveLength(subscribers);
  });
});
