import 'reflect-metadata';
import { Injectable, Scope, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  currentHalfMessage,
  InvalidMessageError,
  TransactionalMessage,
  TransactionCheckHandler,
  TransactionStatus,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionContext,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { DuplicateModuleError } from '../src/errors/duplicate-module.error.js';
import { InvalidModuleOptionsError } from '../src/errors/invalid-module-options.error.js';
import { MessageBodyNotSerializableError } from '../src/errors/message-body-not-serializable.error.js';
import { MessageTableMissingError } from '../src/errors/message-table-missing.error.js';
import { MessageTooLargeError } from '../src/errors/message-too-large.error.js';
import { NoTransactionContextError } from '../src/errors/no-transaction-context.error.js';
import { TransactionalMessageModuleMissingError } from '../src/errors/module-missing.error.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { createShopApp, OrderService, ShopOrder } from './support/shop.fixture.js';

@Injectable()
class EventService {
  constructor(private readonly tx: TransactionContext) {}

  @TransactionalMessage<[string, unknown]>({ topic: 'shop.event', key: ([id]) => id, body: ([, body]) => body })
  async publish(id: string, body: unknown): Promise<void> {
    await this.tx.getRepository(ShopOrder).insert({ id, amount: 1 });
  }

  @TransactionalMessage<[string, string]>({ topic: 'shop.event', key: ([id]) => id, body: () => ({}) })
  async withKey(id: string, key: string): Promise<void> {
    await this.tx.getRepository(ShopOrder).insert({ id, amount: 1 });
    currentHalfMessage().setKey(key);
  }

  @TransactionalMessage<[string, string]>({ topic: 'shop.event', body: () => ({}) })
  async withProperty(id: string, name: string): Promise<void> {
    await this.tx.getRepository(ShopOrder).insert({ id, amount: 1 });
    currentHalfMessage().setProperty(name, 'x');
  }

  /** Key, tags and properties from the decorator's callbacks, as given. */
  @TransactionalMessage<[string, Fields]>({
    topic: 'shop.event',
    key: ([, f]) => f.key as string,
    tags: ([, f]) => f.tags as string[],
    properties: ([, f]) => f.properties as Record<string, string>,
    body: () => ({}),
  })
  async withFields(id: string, fields: Fields): Promise<void> {
    await this.tx.getRepository(ShopOrder).insert({ id, amount: 1 });
  }

  /** Tries a bad value on a setter, catches the error and goes on: the transaction must still commit. */
  @TransactionalMessage<[string, (draft: ReturnType<typeof currentHalfMessage>) => void]>({ topic: 'shop.event', body: () => ({}) })
  async recovering(id: string, attempt: (draft: ReturnType<typeof currentHalfMessage>) => void): Promise<string> {
    await this.tx.getRepository(ShopOrder).insert({ id, amount: 1 });
    try {
      attempt(currentHalfMessage());
      return 'accepted';
    } catch (error) {
      await this.tx.getRepository(ShopOrder).insert({ id: `${id.slice(0, 30)}-after`, amount: 2 });
      return (error as Error).name;
    }
  }
}

interface Fields {
  key?: unknown;
  tags?: unknown;
  properties?: unknown;
}

/** Values that reach SQL or the wire wrongly unless validation stops them. */
const BOUNDARY_VALUES: Array<[string, Fields, RegExp]> = [
  ['a NUL in the key', { key: 'order\u00001' }, /Invalid message key "order\\u00001".*without NUL characters/],
  ['an unpaired surrogate in the key', { key: 'order-\ud800' }, /Invalid message key.*unpaired UTF-16 surrogates/],
  ['a NUL in a tag', { tags: ['paid\u0000'] }, /Invalid message tags/],
  ['tags longer than their column', { tags: Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(100, 'x')) }, /at most 1024 characters in all/],
  ['a __proto__ property', { properties: JSON.parse('{"__proto__": "x"}') }, /property name "__proto__"/],
  ['an unpaired surrogate in a property value', { properties: { source: 'web-\udc00' } }, /property 'source'/],
  ['a properties callback returning a string', { properties: 'ab' }, /Invalid message properties "ab".*a plain object/],
  ['a properties callback returning an array', { properties: ['a'] }, /Invalid message properties \["a"\]/],
  ['a properties callback returning a Map', { properties: new Map([['a', 'b']]) }, /Invalid message properties/],
];

describe.each(DATABASE_KINDS)('bad input on %s: a clear error, nothing stored, nothing already stored changed', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let events: EventService;
  let snapshot: Array<Record<string, unknown>>;

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    app = await createShopApp(db, { maxMessageBytes: 10_000 }, [EventService]);
    events = app.get(EventService);
    // Rows stored before the bad calls; they must be exactly the same afterwards.
    await app.get(OrderService).pay({ id: randomUUID(), amount: 1 });
    await app.get(OrderService).pay({ id: randomUUID(), amount: 2, outcome: 'unknown' });
    snapshot = await messageRows(db);
  });

  afterEach(async () => {
    expect(await messageRows(db)).toEqual(snapshot);
    expect(await db.dataSource.getRepository(ShopOrder).count()).toBe(2);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('a BigInt body', async () => {
    const call = events.publish(randomUUID(), { amount: 10n });
    await expect(call).rejects.toThrow(MessageBodyNotSerializableError);
    await expect(events.publish(randomUUID(), { amount: 10n })).rejects.toThrow(
      /topic 'shop.event' cannot be serialised to JSON: Do not know how to serialize a BigInt/,
    );
  });

  it('a body with a cycle', async () => {
    const body: Record<string, unknown> = { name: 'loop' };
    body.self = body;
    await expect(events.publish(randomUUID(), body)).rejects.toThrow(MessageBodyNotSerializableError);
  });

  it('an undefined body', async () => {
    await expect(events.publish(randomUUID(), undefined)).rejects.toThrow(/the body is undefined/);
  });

  it('a body over maxMessageBytes', async () => {
    const call = events.publish(randomUUID(), { blob: 'x'.repeat(20_000) });
    await expect(call).rejects.toThrow(MessageTooLargeError);
    // 20011 bytes of JSON body plus the 36-byte key.
    await expect(events.publish(randomUUID(), { blob: 'x'.repeat(20_000) })).rejects.toThrow(
      /is 20047 bytes, over the limit of 10000 bytes \(option maxMessageBytes\)/,
    );
  });

  it('an invalid key set inside the method', async () => {
    await expect(events.withKey(randomUUID(), '')).rejects.toThrow(InvalidMessageError);
    await expect(events.withKey(randomUUID(), 'k'.repeat(300))).rejects.toThrow(/Invalid message key .* in EventService.withKey/);
  });

  it.each(BOUNDARY_VALUES)('%s is refused before any SQL runs', async (_what, fields, message) => {
    await expect(events.withFields(randomUUID(), fields)).rejects.toThrow(InvalidMessageError);
    await expect(events.withFields(randomUUID(), fields)).rejects.toThrow(message);
    // The explicit API validates the same way.
    await expect(app.get(TransactionalMessageProducer).sendHalfMessage({ topic: 'shop.event', body: {}, ...(fields as object) })).rejects.toThrow(
      InvalidMessageError,
    );
  });

  it('a body that is a revoked Proxy, and a NUL in a property value', async () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    await expect(events.publish(randomUUID(), proxy)).rejects.toThrow(MessageBodyNotSerializableError);
    await expect(events.publish(randomUUID(), proxy)).rejects.toThrow(/cannot be serialised to JSON: .*revoked/);
    await expect(app.get(TransactionalMessageProducer).sendHalfMessage({ topic: 'shop.event', body: {}, properties: { note: 'a\u0000b' } })).rejects.toThrow(
      /Invalid message property 'note' "a\\u0000b" .*without NUL characters/,
    );
  });

  it('a reserved property name', async () => {
    await expect(events.withProperty(randomUUID(), 'tm-message-id')).rejects.toThrow(/does not start with 'tm-'/);
  });

  it('explicit API: invalid topic, properties and immunity are refused before anything is stored', async () => {
    const producer = app.get(TransactionalMessageProducer);
    await expect(producer.sendHalfMessage({ topic: 'bad topic!', body: {} })).rejects.toThrow(/Invalid message topic "bad topic!"/);
    await expect(producer.sendHalfMessage({ topic: '', body: {} })).rejects.toThrow(InvalidMessageError);
    await expect(producer.sendHalfMessage({ topic: 'ok', body: {}, properties: { n: 1 as unknown as string } })).rejects.toThrow(
      /property 'n' 1/,
    );
    await expect(producer.sendHalfMessage({ topic: 'ok', body: {}, checkImmunityMs: -1 })).rejects.toThrow(/checkImmunityMs -1/);
    await expect(producer.sendHalfMessage({ topic: 'ok', body: { n: 1n } })).rejects.toThrow(MessageBodyNotSerializableError);
  });

  it('currentHalfMessage() and TransactionContext.manager outside a transactional method', async () => {
    expect(() => currentHalfMessage()).toThrow(NoTransactionContextError);
    expect(() => app.get(TransactionContext).manager).toThrow(/TransactionContext.manager is only available inside/);
  });

  it('a decorated method on an instance the module does not manage', async () => {
    const stray = new EventService(app.get(TransactionContext));
    await expect(stray.publish(randomUUID(), {})).rejects.toThrow(TransactionalMessageModuleMissingError);
    await expect(stray.publish(randomUUID(), {})).rejects.toThrow(/EventService.publish was called, but no initialised/);
  });
});

describe.each(DATABASE_KINDS)('a caller that catches a validation error keeps a usable transaction, on %s', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    app = await createShopApp(db, {}, [EventService]);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const exists = async (id: string) => (await db.dataSource.getRepository(ShopOrder).findOneBy({ id })) !== null;

  it.each([
    ['setKey() with a NUL', (draft: ReturnType<typeof currentHalfMessage>) => draft.setKey('a\u0000b'), 'InvalidMessageError'],
    ['setTags() with a NUL', (draft: ReturnType<typeof currentHalfMessage>) => draft.setTags(['paid\u0000']), 'InvalidMessageError'],
    ['setProperty() with __proto__', (draft: ReturnType<typeof currentHalfMessage>) => draft.setProperty('__proto__', 'x'), 'InvalidMessageError'],
    ['setBody() with a BigInt', (draft: ReturnType<typeof currentHalfMessage>) => draft.setBody({ n: 1n }), 'MessageBodyNotSerializableError'],
  ])('%s throws at once; the method catches it, writes on and commits with its message', async (_what, attempt, errorName) => {
    const id = randomUUID();
    expect(await app.get(EventService).recovering(id, attempt)).toBe(errorName);
    expect(await exists(id)).toBe(true);
    expect(await exists(`${id.slice(0, 30)}-after`)).toBe(true);
    expect((await messageRows(db)).filter((row) => row.message_key === null && row.status === 'COMMITTED').length).toBeGreaterThan(0);
  });

  it('the explicit API inside a transaction: a refused message leaves the transaction usable', async () => {
    const [before, after] = [randomUUID(), randomUUID()];
    const producer = app.get(TransactionalMessageProducer);
    await app.get(TransactionContext).runInTransaction(async (manager) => {
      await manager.getRepository(ShopOrder).insert({ id: before, amount: 1 });
      await expect(producer.sendHalfMessage({ topic: 'shop.event', key: 'k\u0000', body: {} })).rejects.toThrow(InvalidMessageError);
      await manager.getRepository(ShopOrder).insert({ id: after, amount: 2 });
    });
    expect(await exists(before)).toBe(true);
    expect(await exists(after)).toBe(true);
  });
});

describe('bad input at class definition: invalid @TransactionalMessage options fail when the class is defined', () => {
  it.each([
    [{ topic: 'has space' }, /Invalid message topic "has space" in @TransactionalMessage on Broken.method/],
    [{ topic: '..' }, /Invalid message topic/],
    [{ topic: 'x'.repeat(250) }, /Invalid message topic/],
    [{ topic: 'ok', tags: 'a|b' }, /Invalid message tags "a\|b"/],
    [{ topic: 'ok', key: '' }, /Invalid message key ""/],
    [{ topic: 'ok', checkImmunityMs: 1.5 }, /checkImmunityMs 1.5/],
    [{ topic: 'ok', isolationLevel: 'SNAPSHOT' }, /isolationLevel "SNAPSHOT"/],
    [{ topic: 'ok', topik: 'typo' }, /Invalid message option "topik"/],
  ])('%j', (options, expected) => {
    expect(() => {
      class Broken {
        @TransactionalMessage(options as never)
        async method() {}
      }
      return Broken;
    }).toThrow(expected);
  });

  it('isGlobal that is not a boolean fails at forRoot()', () => {
    expect(() => TransactionalMessageModule.forRoot({ dataSource: {} as never, producerGroup: 'shop', isGlobal: 'yes' as unknown as boolean })).toThrow(
      /option 'isGlobal' is "yes"; expected true .* or false/,
    );
  });

  it('a static method', () => {
    expect(() => {
      class Broken {
        @TransactionalMessage({ topic: 'ok' })
        static async method() {}
      }
      return Broken;
    }).toThrow(/cannot decorate static method Broken.method/);
  });
});

describe('bad input at boot: invalid module options fail the bootstrap with the option named', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });

  afterAll(async () => {
    await db?.drop();
  });

  const boot = async (options: Partial<TransactionalMessageModuleOptions> | (() => Partial<TransactionalMessageModuleOptions>)) => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        typeof options === 'function'
          ? TransactionalMessageModule.forRootAsync({ useFactory: options as () => TransactionalMessageModuleOptions })
          : TransactionalMessageModule.forRoot(options as TransactionalMessageModuleOptions),
      ],
    }).compile();
    moduleRef.useLogger(false);
    return moduleRef.init().finally(() => moduleRef.close());
  };

  const cases: Array<[string, (dataSource: DataSource) => Record<string, unknown>, RegExp]> = [
    ['no kafka and no publisher while the relay runs', (dataSource) => ({ dataSource, producerGroup: 'shop' }), /option 'kafka' is undefined; expected the Kafka client configuration/],
    ['no dataSource', () => ({ producerGroup: 'shop' }), /option 'dataSource' is undefined; expected a TypeORM DataSource/],
    ['empty producerGroup', (dataSource) => ({ dataSource, producerGroup: '' }), /option 'producerGroup' is ""/],
    ['producerGroup with a space', (dataSource) => ({ dataSource, producerGroup: 'has space' }), /option 'producerGroup' is "has space"/],
    ['negative checkImmunityMs', (dataSource) => ({ dataSource, producerGroup: 'shop', checkImmunityMs: -5 }), /option 'checkImmunityMs' is -5; expected a whole number of milliseconds from 0/],
    ['zero maxMessageBytes', (dataSource) => ({ dataSource, producerGroup: 'shop', maxMessageBytes: 0 }), /option 'maxMessageBytes' is 0/],
    ['tableName that is not an identifier', (dataSource) => ({ dataSource, producerGroup: 'shop', tableName: 'drop table;' }), /option 'tableName' is "drop table;"/],
    ['unknown queriesOutsideTransaction', (dataSource) => ({ dataSource, producerGroup: 'shop', queriesOutsideTransaction: 'maybe' }), /option 'queriesOutsideTransaction' is "maybe"/],
    ['misspelt option', (dataSource) => ({ dataSource, producerGroup: 'shop', checkImmunity: 5 }), /option 'checkImmunity' is 5; expected no such option/],
    ['negative relay.vacuumAfterRows', (dataSource) => ({ dataSource, producerGroup: 'shop', relay: { enabled: false, vacuumAfterRows: -1 } }), /option 'relay.vacuumAfterRows' is -1; expected/],
  ];

  it.each(cases)('%s', async (_name, options, expected) => {
    const invalid = options(db.dataSource) as Partial<TransactionalMessageModuleOptions>;
    await expect(boot(invalid)).rejects.toThrow(InvalidModuleOptionsError);
    await expect(boot(invalid)).rejects.toThrow(expected);
  });

  it('the module registered twice without names in one application (two DataSources) fails the boot, saying how to name them', async () => {
    const other = await createTestDatabase('sqlite');
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [
          TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'orders', relay: { enabled: false } }),
          TransactionalMessageModule.forRoot({ dataSource: other.dataSource, producerGroup: 'billing', relay: { enabled: false } }),
        ],
        providers: [OrderService],
      }).compile();
      moduleRef.useLogger(false);
      const attempt = moduleRef.init().finally(() => moduleRef.close());
      await expect(attempt).rejects.toThrow(DuplicateModuleError);
      await expect(attempt).rejects.toThrow(
        /registered 2 times under one name or on one message table in this application \('default': producer group '(orders|billing)' on a .* DataSource, table transactional_message; 'default': producer group '(orders|billing)' .*\)\. Each registration needs a name of its own \(forRoot\(\{ name: 'archive'/,
      );
    } finally {
      await other.drop();
    }
  });

  it('two check handlers for one topic, two catch-alls, or a request-scoped handler fail the boot', async () => {
    @Injectable()
    class First {
      @TransactionCheckHandler({ topic: 'order.paid' })
      check() {
        return TransactionStatus.COMMIT;
      }
    }
    @Injectable()
    class Second {
      @TransactionCheckHandler({ topic: ['order.refunded', 'order.paid'] })
      check() {
        return TransactionStatus.COMMIT;
      }
    }
    @Injectable()
    class CatchAllOne {
      @TransactionCheckHandler()
      check() {
        return TransactionStatus.COMMIT;
      }
    }
    @Injectable()
    class CatchAllTwo {
      @TransactionCheckHandler()
      check() {
        return TransactionStatus.COMMIT;
      }
    }
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @TransactionCheckHandler({ topic: 'order.shipped' })
      check() {
        return TransactionStatus.COMMIT;
      }
    }
    const bootWith = async (providers: Function[]) => {
      const moduleRef = await Test.createTestingModule({
        imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'shop', relay: { enabled: false } })],
        providers: providers as never[],
      }).compile();
      moduleRef.useLogger(false);
      return moduleRef.init().finally(() => moduleRef.close());
    };
    await expect(bootWith([First, Second])).rejects.toThrow(
      "Two @TransactionCheckHandler methods for topic 'order.paid': First.check and Second.check",
    );
    await expect(bootWith([CatchAllOne, CatchAllTwo])).rejects.toThrow('Two catch-all @TransactionCheckHandler methods');
    await expect(bootWith([PerRequest])).rejects.toThrow('@TransactionCheckHandler PerRequest.check is on a request-scoped or transient provider');
  });

  it('an invalid @TransactionCheckHandler topic fails when the class is defined', () => {
    expect(() => {
      class Broken {
        @TransactionCheckHandler({ topic: 'no spaces allowed' })
        check() {}
      }
      return Broken;
    }).toThrow(/Invalid message topic "no spaces allowed" in @TransactionCheckHandler on Broken.check/);
  });

  it('forRootAsync validates the options its factory returns', async () => {
    await expect(boot(() => ({ dataSource: db.dataSource, producerGroup: 'a b', relay: { enabled: false } }))).rejects.toThrow(
      /option 'producerGroup' is "a b"/,
    );
  });

  it('an unsupported database type', async () => {
    const fake = { options: { type: 'mongodb' }, transaction: () => undefined } as unknown as DataSource;
    await expect(boot({ dataSource: fake, producerGroup: 'shop', relay: { enabled: false } })).rejects.toThrow(
      /DataSource type "mongodb" is not supported/,
    );
  });

  it('a DataSource that is not initialized', async () => {
    const idle = new DataSource(db.options);
    await expect(boot({ dataSource: idle, producerGroup: 'shop', relay: { enabled: false } })).rejects.toThrow(/not initialized/);
  });

  it('a missing message table names the migrations to run', async () => {
    const bare = await createTestDatabase('postgres', { migrate: false });
    try {
      const options = { dataSource: bare.dataSource, producerGroup: 'shop', relay: { enabled: false } };
      await expect(boot(options)).rejects.toThrow(MessageTableMissingError);
      await expect(boot(options)).rejects.toThrow(/transactionalMessageMigrations/);
    } finally {
      await bare.drop();
    }
  });
});
