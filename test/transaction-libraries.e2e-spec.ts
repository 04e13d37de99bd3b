import 'reflect-metadata';
import { Global, Inject, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import type { EntityManager, Repository } from 'typeorm';
import { TransactionContext, TransactionalMessage, TransactionalMessageModule } from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { ShopOrder } from './support/shop.fixture.js';

// Both libraries are CommonJS packages that require the ESM @nestjs/common / typeorm; loaded once
// this file's own imports are done (see context-join.e2e-spec.ts).
const cls = await import('./support/cls.fixture.js');
const typeormTransactional = await import('typeorm-transactional');
typeormTransactional.initializeTransactionalContext({ storageDriver: typeormTransactional.StorageDriver.ASYNC_LOCAL_STORAGE });

const DATA_SOURCE = 'LIBRARIES_DATA_SOURCE';
const ORDERS = 'LIBRARIES_ORDER_REPOSITORY';

/** What each library's user code does, written the way that library's users write it. */
interface LibraryUsage {
  /** The library's own transaction around `work` (its decorator, or its run-in-transaction call). */
  inTransaction<T>(work: () => Promise<T>): Promise<T>;
  /** A business write the way users of that library write it (TransactionHost.tx, an injected repository). */
  insert(id: string): Promise<void>;
  /** The current database transaction's id (PostgreSQL), seen through the library. */
  txid(): Promise<string>;
  readonly txidSql: string;
}

/** A decorated method whose business code is written for the transaction library. */
@Injectable()
class PaymentService {
  usage!: LibraryUsage;

  constructor(private readonly tx: TransactionContext) {}

  /** Returns the transaction ids its business write and its message see. */
  @TransactionalMessage<[string, boolean]>({ topic: 'order.paid', key: ([id]) => id, body: ([id]) => ({ id }) })
  async pay(id: string, fail: boolean): Promise<{ business: string; message: string }> {
    await this.usage.insert(id);
    if (fail) throw new Error(`payment ${id} failed`);
    const [{ txid }] = await this.tx.manager.query(this.usage.txidSql);
    return { business: await this.usage.txid(), message: String(txid) };
  }
}

describe.each(DATABASE_KINDS)('transaction libraries side by side on %s', (kind) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    typeormTransactional.addTransactionalDataSource({ name: `libraries-${kind}`, dataSource: db.dataSource });
  });

  afterAll(async () => {
    typeormTransactional.deleteDataSourceByName(`libraries-${kind}`);
    await db?.drop();
  });

  const exists = async (id: string) => (await db.dataSource.getRepository(ShopOrder).findOneBy({ id })) !== null;
  const messagesOf = async (key: string) => (await messageRows(db)).filter((row) => row.message_key === key);
  /** The id of the PostgreSQL transaction that wrote the message of `key`. */
  const messageXmin = async (key: string) =>
    String((await db.dataSource.query(`SELECT xmin::text AS xmin FROM transactional_message WHERE message_key = $1`, [key]))[0].xmin);
  const txidSql = kind === 'postgres' ? 'SELECT txid_current()::text AS txid' : "SELECT 'n/a' AS txid";

  /** One application per library, with PaymentService written for it. */
  async function appFor(library: 'nestjs-cls' | 'typeorm-transactional'): Promise<{ app: INestApplicationContext; usage: LibraryUsage }> {
    @Global()
    @Module({
      providers: [
        { provide: DATA_SOURCE, useValue: db.dataSource },
        // Injected the usual way: a repository of the DataSource (typeorm-transactional redirects it into its transaction).
        { provide: ORDERS, useFactory: () => db.dataSource.getRepository(ShopOrder) },
      ],
      exports: [DATA_SOURCE, ORDERS],
    })
    class DatabaseModule {}

    @Injectable()
    class Usage implements LibraryUsage {
      constructor(@Inject(ORDERS) private readonly orders: Repository<ShopOrder>) {}
      host?: { tx: EntityManager; withTransaction<T>(fn: () => Promise<T>): Promise<T> };
      readonly txidSql = txidSql;

      inTransaction<T>(work: () => Promise<T>): Promise<T> {
        return library === 'nestjs-cls'
          ? this.host!.withTransaction(work)
          : typeormTransactional.runInTransaction(work, { connectionName: `libraries-${kind}` });
      }
      async insert(id: string): Promise<void> {
        if (library === 'nestjs-cls') await this.host!.tx.getRepository(ShopOrder).insert({ id, amount: 1 });
        else await this.orders.insert({ id, amount: 1 });
      }
      async txid(): Promise<string> {
        const manager = library === 'nestjs-cls' ? this.host!.tx : this.orders.manager;
        const [{ txid }] = await manager.query(txidSql);
        return String(txid);
      }
    }

    const imports: any[] = [DatabaseModule];
    if (library === 'nestjs-cls') {
      imports.push(
        cls.ClsModule.forRoot({
          global: true,
          plugins: [
            new cls.ClsPluginTransactional({
              imports: [DatabaseModule],
              adapter: new cls.TransactionalAdapterTypeOrm({ dataSourceToken: DATA_SOURCE }),
            }),
          ],
        }),
      );
    }
    imports.push(TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'shop', relay: { enabled: false } }));
    const moduleRef = await Test.createTestingModule({ imports, providers: [Usage, PaymentService] }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    const usage = app.get(Usage);
    if (library === 'nestjs-cls') {
      const { TransactionHost } = await import('@nestjs-cls/transactional');
      usage.host = app.get(TransactionHost) as never;
    }
    app.get(PaymentService).usage = usage;
    return { app, usage };
  }

  describe.each(['nestjs-cls', 'typeorm-transactional'] as const)('with %s', (library) => {
    let app: INestApplicationContext;
    let usage: LibraryUsage;
    let payments: PaymentService;

    beforeAll(async () => {
      ({ app, usage } = await appFor(library));
      payments = app.get(PaymentService);
    });

    afterAll(async () => {
      await app?.close();
    });

    it("a decorated call inside the library's transaction joins it: one database transaction, both commit", async () => {
      const [order, payment] = [randomUUID(), randomUUID()];
      const [outer, inner] = await usage.inTransaction(async () => {
        await usage.insert(order);
        return [await usage.txid(), await payments.pay(payment, false)] as const;
      });
      // (The message's row was written in a savepoint, so its xmin is a subtransaction's id.)
      if (kind === 'postgres') expect(inner).toEqual({ business: outer, message: outer });
      expect(await exists(order)).toBe(true);
      expect(await exists(payment)).toBe(true);
      expect(await messagesOf(payment)).toHaveLength(1);
    });

    it("the library's transaction rolling back after the decorated call takes the message with it", async () => {
      const [order, payment] = [randomUUID(), randomUUID()];
      await expect(
        usage.inTransaction(async () => {
          await usage.insert(order);
          await payments.pay(payment, false);
          throw new Error('the order failed after the payment');
        }),
      ).rejects.toThrow('the order failed after the payment');
      expect(await exists(order)).toBe(false);
      expect(await exists(payment)).toBe(false);
      expect(await messagesOf(payment)).toHaveLength(0);
    });

    it('a decorated call that fails leaves nothing behind even when the caller swallows the error and commits', async () => {
      const [order, payment] = [randomUUID(), randomUUID()];
      await usage.inTransaction(async () => {
        await usage.insert(order);
        await payments.pay(payment, true).catch(() => undefined);
      });
      expect(await exists(order)).toBe(true);
      expect(await exists(payment)).toBe(false);
      expect(await messagesOf(payment)).toHaveLength(0);
    });

    it("a decorated call on its own opens the transaction through the library: the library's writes are in it", async () => {
      const [committed, failed] = [randomUUID(), randomUUID()];
      const { business: txid } = await payments.pay(committed, false);
      expect(await exists(committed)).toBe(true);
      expect(await messagesOf(committed)).toHaveLength(1);
      if (kind === 'postgres') expect(await messageXmin(committed)).toBe(txid);
      await expect(payments.pay(failed, true)).rejects.toThrow(`payment ${failed} failed`);
      expect(await exists(failed)).toBe(false);
      expect(await messagesOf(failed)).toHaveLength(0);
    });
  });
});
