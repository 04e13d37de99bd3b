import 'reflect-metadata';
import { Controller, Inject, Injectable, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import {
  currentHalfMessage,
  getTransactionalMessageProducerToken,
  getTransactionalMessageRelayToken,
  Inbox,
  InjectTransactionContext,
  InjectTransactionalMessageProducer,
  InvalidMessageError,
  PRODUCER_GROUP_HEADER,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionCheckHandler,
  TransactionContext,
  TransactionStatus,
  type HalfMessage,
  MessageInfo,
  type ConsumedMessage,
  TransactionalMessageAdminModule,
} from '../src/index.js';
import { DuplicateModuleError } from '../src/errors/duplicate-module.error.js';
import { InvalidModuleOptionsError } from '../src/errors/invalid-module-options.error.js';
import { createTestDatabase, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_BROKERS, listenKafkaMicroservice, KAFKA_CLIENT, TestConsumer, uniqueTopic } from './support/kafka.js';

// One application, two DataSources (PostgreSQL and SQLite), a registration of the module on each:
// the default one and one named 'archive'. Each has its own message table, producer group, relay,
// check handlers and topics; nothing of one reaches the other.

@Entity('shop_order')
class ShopOrder {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;
}

@Entity('archive_entry')
class ArchiveEntry {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;
}

const shopTopic = uniqueTopic('named.shop');
const archiveTopic = uniqueTopic('named.archive');
const checkedBy: Array<{ handler: string; topic: string; id: string }> = [];

@Injectable()
class Archiver {
  constructor(
    @InjectTransactionContext('archive') private readonly tx: TransactionContext,
    private readonly shopTx: TransactionContext,
  ) {}

  /** Inside its SQLite transaction, also writes through the default registration's context: the caller's PostgreSQL transaction, if any. */
  @TransactionalMessage<[string]>({ instance: 'archive', topic: archiveTopic, key: ([id]) => id, body: ([id]) => ({ archived: id }) })
  async recordAndNote(id: string): Promise<boolean> {
    await this.tx.getRepository(ArchiveEntry).insert({ id });
    if (!this.shopTx.isActive) return false;
    await this.shopTx.getRepository(ShopOrder).insert({ id: `note-${id}` });
    return true;
  }

  @TransactionalMessage<[string]>({ instance: 'archive', topic: archiveTopic, key: ([id]) => id, body: ([id]) => ({ archived: id }) })
  async record(id: string): Promise<void> {
    await this.tx.getRepository(ArchiveEntry).insert({ id });
  }

  @TransactionalMessage<[string]>({ instance: 'archive', topic: archiveTopic, key: ([id]) => id, body: ([id]) => ({ archived: id }) })
  async recordUnknown(id: string): Promise<void> {
    await this.tx.getRepository(ArchiveEntry).insert({ id });
    currentHalfMessage().unknown();
  }

  @TransactionCheckHandler({ instance: 'archive', topic: archiveTopic })
  async check(message: HalfMessage): Promise<TransactionStatus> {
    checkedBy.push({ handler: 'archive', topic: message.topic, id: message.id });
    return TransactionStatus.COMMIT;
  }
}

@Injectable()
class Shop {
  constructor(
    private readonly tx: TransactionContext,
    private readonly archiver: Archiver,
  ) {}

  /** Writes its order on PostgreSQL, archives it on SQLite in between, then writes on PostgreSQL again. */
  @TransactionalMessage<[string, boolean?]>({ topic: shopTopic, key: ([id]) => id, body: ([id]) => ({ paid: id }) })
  async pay(id: string, fail = false): Promise<void> {
    await this.tx.getRepository(ShopOrder).insert({ id });
    await this.archiver.record(`archived-${id}`);
    // Back on PostgreSQL after a transaction on SQLite: still the same transaction.
    await this.tx.manager.getRepository(ShopOrder).update({ id }, { id: `${id}-done` });
    if (fail) throw new Error('payment refused');
  }

  @TransactionalMessage<[string, boolean]>({ topic: shopTopic, key: ([id]) => id, body: ([id]) => ({ paid: id }) })
  async payAndNote(id: string, fail: boolean): Promise<boolean> {
    await this.tx.getRepository(ShopOrder).insert({ id });
    const joined = await this.archiver.recordAndNote(`archived-${id}`);
    if (fail) throw new Error('payment refused');
    return joined;
  }

  @TransactionalMessage<[string]>({ topic: shopTopic, key: ([id]) => id, body: ([id]) => ({ paid: id }) })
  async payUnknown(id: string): Promise<void> {
    await this.tx.getRepository(ShopOrder).insert({ id });
    currentHalfMessage().unknown();
  }

  /** A method of the other registration on the same instance. */
  @TransactionalMessage<[string]>({ instance: 'archive', topic: archiveTopic, key: ([id]) => id, body: ([id]) => ({ direct: id }) })
  async archiveDirectly(id: string): Promise<void> {}

  @TransactionCheckHandler({ topic: shopTopic })
  async check(message: HalfMessage): Promise<TransactionStatus> {
    checkedBy.push({ handler: 'shop', topic: message.topic, id: message.id });
    return TransactionStatus.COMMIT;
  }
}

/** A consumer of both topics, each through the inbox of the registration whose DataSource it writes to. */
@Controller()
class Mirror {
  constructor(
    private readonly shop: TransactionContext,
    @InjectTransactionContext('archive') private readonly archive: TransactionContext,
  ) {}

  @EventPattern<string>(shopTopic)
  @Inbox({ consumer: 'mirror' })
  async onShop(@Payload() _body: unknown, @MessageInfo() info: ConsumedMessage): Promise<void> {
    await this.shop.manager.insert(ShopOrder, { id: `mirror-${info.key}` });
  }

  @EventPattern<string>(archiveTopic)
  @Inbox({ consumer: 'mirror', instance: 'archive' })
  async onArchive(@Payload() _body: unknown, @MessageInfo() info: ConsumedMessage): Promise<void> {
    await this.archive.manager.insert(ArchiveEntry, { id: `mirror-${info.key}` });
  }
}

/** Injects the services as an application would: by class (default registration) and by token (named). */
@Injectable()
class Probe {
  constructor(
    readonly producer: TransactionalMessageProducer,
    @InjectTransactionalMessageProducer('archive') readonly archiveProducer: TransactionalMessageProducer,
    readonly relay: TransactionalMessageRelay,
    @Inject(getTransactionalMessageRelayToken('archive')) readonly archiveRelay: TransactionalMessageRelay,
  ) {}
}

// Delivered rows kept (retentionMs), so the tests can read which table each message went to.
const relay = { pollIntervalMs: 50, backoffInitialMs: 20, backoffMaxMs: 200, retentionMs: 86_400_000 };
const check = { intervalMs: 100 };

describe('two DataSources, two registrations: nothing crosses', () => {
  let pg: TestDatabase;
  let lite: TestDatabase;
  let app: INestApplication;
  let microservice: INestMicroservice;
  let url: string;
  let consumer: TestConsumer;

  beforeAll(async () => {
    [pg, lite] = await Promise.all([
      createTestDatabase('postgres', { entities: [ShopOrder], inbox: true }),
      createTestDatabase('sqlite', { entities: [ArchiveEntry], inbox: true }),
    ]);
    await createTopics([shopTopic, archiveTopic]);
    consumer = await new TestConsumer([shopTopic, archiveTopic]).start();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: pg.dataSource,
          producerGroup: 'shop',
          checkImmunityMs: 100,
          kafka: { ...KAFKA_CLIENT, brokers: KAFKA_BROKERS, clientId: 'tm-test-named-shop' },
          relay,
          check,
          inbox: { enabled: true },
        }),
        TransactionalMessageModule.forRoot({
          name: 'archive',
          dataSource: lite.dataSource,
          producerGroup: 'archive',
          checkImmunityMs: 100,
          kafka: { ...KAFKA_CLIENT, brokers: KAFKA_BROKERS, clientId: 'tm-test-named-archive' },
          relay,
          check,
          inbox: { enabled: true },
        }),
        TransactionalMessageAdminModule.forRoot({ path: 'ops/shop', allowUnguarded: true }),
        TransactionalMessageAdminModule.forRoot({ path: 'ops/archive', allowUnguarded: true, instance: 'archive' }),
      ],
      providers: [Shop, Archiver, Probe],
      controllers: [Mirror],
    }).compile();
    moduleRef.useLogger(false);
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    microservice = await listenKafkaMicroservice(moduleRef, 'tm-test-named-mirror');
  });

  afterAll(async () => {
    await microservice?.close();
    await app?.close();
    await consumer?.stop();
    await Promise.all([pg?.drop(), lite?.drop()]);
  });

  const rowsOf = async (db: TestDatabase) => (await messageRows(db)).map((r) => ({ topic: r.topic, key: r.message_key, group: r.producer_group }));

  it('each decorated method writes into its own DataSource, and a call on the other DataSource inside a transaction leaves it joined', async () => {
    const id = randomUUID();
    await app.get(Shop).pay(id);
    expect(await pg.dataSource.getRepository(ShopOrder).findOneBy({ id: `${id}-done` })).not.toBeNull();
    expect(await lite.dataSource.getRepository(ArchiveEntry).findOneBy({ id: `archived-${id}` })).not.toBeNull();
    expect((await rowsOf(pg)).filter((r) => r.key === id)).toEqual([{ topic: shopTopic, key: id, group: 'shop' }]);
    expect((await rowsOf(lite)).filter((r) => r.key === `archived-${id}`)).toEqual([{ topic: archiveTopic, key: `archived-${id}`, group: 'archive' }]);
    // Neither table holds a message of the other registration.
    expect((await rowsOf(pg)).filter((r) => r.topic !== shopTopic || r.group !== 'shop')).toEqual([]);
    expect((await rowsOf(lite)).filter((r) => r.topic !== archiveTopic || r.group !== 'archive')).toEqual([]);
  });

  it('a transaction on one DataSource does not take a call on the other with it: a failed payment rolls back only its own writes', async () => {
    const id = randomUUID();
    await expect(app.get(Shop).pay(id, true)).rejects.toThrow('payment refused');
    expect(await pg.dataSource.getRepository(ShopOrder).countBy({ id: `${id}-done` })).toBe(0);
    expect((await rowsOf(pg)).filter((r) => r.key === id)).toEqual([]);
    // The archive call ran in a transaction of its own on SQLite, committed when it returned.
    expect(await lite.dataSource.getRepository(ArchiveEntry).countBy({ id: `archived-${id}` })).toBe(1);
    expect((await rowsOf(lite)).filter((r) => r.key === `archived-${id}`)).toHaveLength(1);
  });

  it("inside a call on SQLite, the caller's PostgreSQL transaction is still the one the default registration joins", async () => {
    const kept = randomUUID();
    await app.get(Shop).payAndNote(kept, false);
    expect(await pg.dataSource.getRepository(ShopOrder).countBy({ id: `note-archived-${kept}` })).toBe(1);
    const undone = randomUUID();
    await expect(app.get(Shop).payAndNote(undone, true)).rejects.toThrow('payment refused');
    // Written inside the SQLite call, in the PostgreSQL transaction: rolled back with it.
    expect(await pg.dataSource.getRepository(ShopOrder).countBy({ id: `note-archived-${undone}` })).toBe(0);
    expect(await pg.dataSource.getRepository(ShopOrder).countBy({ id: undone })).toBe(0);
    expect(await lite.dataSource.getRepository(ArchiveEntry).countBy({ id: `archived-${undone}` })).toBe(1);
  });

  it('one instance may have methods of both registrations', async () => {
    const id = randomUUID();
    await app.get(Shop).archiveDirectly(id);
    expect((await rowsOf(lite)).filter((r) => r.key === id)).toEqual([{ topic: archiveTopic, key: id, group: 'archive' }]);
    expect((await rowsOf(pg)).filter((r) => r.key === id)).toEqual([]);
  });

  it('each relay publishes its own messages, and each check handler checks only its own registration', async () => {
    const shopId = randomUUID();
    const archiveId = randomUUID();
    await app.get(Shop).payUnknown(shopId);
    await app.get(Archiver).recordUnknown(archiveId);
    await consumer.waitFor('both checked messages published', (received) =>
      [shopId, archiveId].every((key) => received.some((r) => r.key === key)),
    );
    const shopRecord = consumer.of(shopTopic).find((r) => r.key === shopId)!;
    const archiveRecord = consumer.of(archiveTopic).find((r) => r.key === archiveId)!;
    expect(shopRecord.headers[PRODUCER_GROUP_HEADER]).toBe('shop');
    expect(archiveRecord.headers[PRODUCER_GROUP_HEADER]).toBe('archive');
    expect(consumer.of(shopTopic).every((r) => r.headers[PRODUCER_GROUP_HEADER] === 'shop')).toBe(true);
    expect(consumer.of(archiveTopic).every((r) => r.headers[PRODUCER_GROUP_HEADER] === 'archive')).toBe(true);
    expect(checkedBy.filter((c) => c.id === shopRecord.headers['tm-message-id'] || c.id === archiveRecord.headers['tm-message-id'])).toEqual(
      expect.arrayContaining([
        { handler: 'shop', topic: shopTopic, id: shopRecord.headers['tm-message-id'] },
        { handler: 'archive', topic: archiveTopic, id: archiveRecord.headers['tm-message-id'] },
      ]),
    );
    expect(checkedBy.filter((c) => (c.handler === 'shop') !== (c.topic === shopTopic))).toEqual([]);
  });

  it('services inject by class (the default registration) or by the token of a name', async () => {
    const probe = app.get(Probe);
    const archiveProducer = probe.archiveProducer;
    expect(archiveProducer).toBe(app.get<TransactionalMessageProducer>(getTransactionalMessageProducerToken('archive')));
    expect(archiveProducer).not.toBe(probe.producer);
    expect(probe.archiveRelay).not.toBe(probe.relay);
    expect(getTransactionalMessageProducerToken()).toBe(TransactionalMessageProducer);
    const shopKey = randomUUID();
    await probe.producer.sendMessageInTransaction({ topic: shopTopic, key: shopKey, body: { explicit: true } }, () => TransactionStatus.COMMIT);
    expect((await rowsOf(pg)).filter((r) => r.key === shopKey)).toEqual([{ topic: shopTopic, key: shopKey, group: 'shop' }]);
    const key = randomUUID();
    await archiveProducer.sendMessageInTransaction({ topic: archiveTopic, key, body: { explicit: true } }, () => TransactionStatus.COMMIT);
    expect((await rowsOf(lite)).filter((r) => r.key === key)).toEqual([{ topic: archiveTopic, key, group: 'archive' }]);
    expect((await rowsOf(pg)).filter((r) => r.key === key)).toEqual([]);
    await eventually('the explicit message published by the archive relay', () => consumer.of(archiveTopic).some((r) => r.key === key));
  });
  it("@Inbox records into the inbox of the registration it names, in that registration's transaction", async () => {
    const shopKey = randomUUID();
    const archiveKey = randomUUID();
    await app.get(Shop).archiveDirectly(archiveKey);
    await app.get(Probe).producer.sendMessageInTransaction({ topic: shopTopic, key: shopKey, body: {} }, () => TransactionStatus.COMMIT);
    await eventually('the mirror handled both', async () =>
      (await pg.dataSource.getRepository(ShopOrder).countBy({ id: `mirror-${shopKey}` })) === 1 &&
      (await lite.dataSource.getRepository(ArchiveEntry).countBy({ id: `mirror-${archiveKey}` })) === 1,
    30_000);
    const idOf = async (db: TestDatabase, key: string) => (await messageRows(db)).find((r) => r.message_key === key)!.id as string;
    const inboxOf = async (db: TestDatabase) =>
      ((await db.dataSource.query('SELECT consumer, message_id FROM transactional_message_inbox')) as Array<{ consumer: string; message_id: string }>).map(
        (r) => `${r.consumer}:${r.message_id}`,
      );
    const [shopId, archiveId] = [await idOf(pg, shopKey), await idOf(lite, archiveKey)];
    expect(await inboxOf(pg)).toContain(`mirror:${shopId}`);
    expect(await inboxOf(pg)).not.toContain(`mirror:${archiveId}`);
    expect(await inboxOf(lite)).toContain(`mirror:${archiveId}`);
    expect(await inboxOf(lite)).not.toContain(`mirror:${shopId}`);
  });

  it('an admin module per registration, each at its own path, shows and acts on its own messages only', async () => {
    const archiveProducer = app.get<TransactionalMessageProducer>(getTransactionalMessageProducerToken('archive'));
    const half = await archiveProducer.sendHalfMessage({ topic: archiveTopic, key: randomUUID(), body: {}, checkImmunityMs: 3_600_000 });
    const get = async (path: string) => {
      const response = await fetch(`${url}/${path}`);
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    };
    expect((await get(`ops/archive/api/messages/${half}`)).body.message).toMatchObject({ id: half, producerGroup: 'archive', status: 'HALF' });
    expect((await get(`ops/shop/api/messages/${half}`)).status).toBe(404);
    const listed = async (path: string) => ((await get(`${path}/api/messages?status=HALF`)).body.messages as Array<{ id: string }>).map((m) => m.id);
    expect(await listed('ops/archive')).toContain(half);
    expect(await listed('ops/shop')).not.toContain(half);
    const rolledBack = await fetch(`${url}/ops/archive/api/messages/${half}/rollback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(rolledBack.status).toBe(200);
    expect((await archiveProducer.getMessage(half))?.status).toBe('ROLLED_BACK');
  });
});

describe('named registrations: bad input fails at the earliest point', () => {
  let pg: TestDatabase;
  let lite: TestDatabase;

  beforeAll(async () => {
    [pg, lite] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('sqlite')]);
  });
  afterAll(() => Promise.all([pg?.drop(), lite?.drop()]));

  const boot = async (imports: unknown[], providers: Function[] = []) => {
    const moduleRef = await Test.createTestingModule({ imports: imports as never[], providers: providers as never[] }).compile();
    moduleRef.useLogger(false);
    const app = moduleRef.createNestApplication();
    try {
      await app.init();
    } finally {
      await app.close();
    }
  };
  const options = (db: TestDatabase, producerGroup: string) => ({ dataSource: db.dataSource, producerGroup, relay: { enabled: false } });

  it('forRootAsync() takes a name too, and its services inject by that name', async () => {
    @Injectable()
    class UsesArchive {
      constructor(@InjectTransactionalMessageProducer('async-archive') readonly producer: TransactionalMessageProducer) {}
    }
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot(options(pg, 'a')),
        TransactionalMessageModule.forRootAsync({ name: 'async-archive', useFactory: () => options(lite, 'b') }),
      ],
      providers: [UsesArchive],
    }).compile();
    moduleRef.useLogger(false);
    const app = moduleRef.createNestApplication();
    await app.init();
    try {
      const key = randomUUID();
      await app.get(UsesArchive).producer.sendMessageInTransaction({ topic: 'async.topic', key, body: {} }, () => TransactionStatus.COMMIT);
      expect((await messageRows(lite)).filter((r) => r.message_key === key).map((r) => r.producer_group)).toEqual(['b']);
      expect((await messageRows(pg)).filter((r) => r.message_key === key)).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('an invalid name fails at forRoot()', () => {
    expect(() => TransactionalMessageModule.forRoot({ name: 'has space', ...options(pg, 'a') })).toThrow(InvalidModuleOptionsError);
    expect(() => TransactionalMessageModule.forRoot({ name: 'has space', ...options(pg, 'a') })).toThrow(/option 'name' is "has space"/);
  });

  it('an invalid instance on a decorator fails when the class is defined', () => {
    expect(() => {
      class Bad {
        @TransactionalMessage({ topic: 'x', instance: '' })
        async m(): Promise<void> {}
      }
      return Bad;
    }).toThrow(InvalidMessageError);
  });

  it('two registrations of one name fail the boot, naming both', async () => {
    await expect(boot([TransactionalMessageModule.forRoot(options(pg, 'a')), TransactionalMessageModule.forRoot(options(lite, 'b'))])).rejects.toThrow(
      DuplicateModuleError,
    );
    await expect(
      boot([TransactionalMessageModule.forRoot({ name: 'x', ...options(pg, 'a') }), TransactionalMessageModule.forRoot({ name: 'x', ...options(lite, 'b') })]),
    ).rejects.toThrow(/'x': producer group 'a'.*'x': producer group 'b'/);
  });

  it('two registrations on one message table fail the boot', async () => {
    await expect(
      boot([TransactionalMessageModule.forRoot(options(pg, 'a')), TransactionalMessageModule.forRoot({ name: 'other', ...options(pg, 'b') })]),
    ).rejects.toThrow(DuplicateModuleError);
  });

  it('a decorated method naming no registration fails the boot, naming what is registered', async () => {
    @Injectable()
    class Lost {
      @TransactionalMessage({ topic: 'lost.topic', instance: 'archiv' })
      async m(): Promise<void> {}
    }
    await expect(boot([TransactionalMessageModule.forRoot(options(pg, 'a')), TransactionalMessageModule.forRoot({ name: 'archive', ...options(lite, 'b') })], [Lost])).rejects.toThrow(
      /Lost\.m names instance 'archiv', but no TransactionalMessageModule registration has that name \(registered: 'default', 'archive'\)/,
    );
  });
  it("an @Inbox naming no registration, or one without the inbox, fails the boot", async () => {
    @Injectable()
    class LostInbox {
      @Inbox({ instance: 'archiv' })
      async handle(): Promise<void> {}
    }
    @Injectable()
    class ArchiveInbox {
      @Inbox({ instance: 'archive' })
      async handle(): Promise<void> {}
    }
    const both = () => [TransactionalMessageModule.forRoot(options(pg, 'a')), TransactionalMessageModule.forRoot({ name: 'archive', ...options(lite, 'b') })];
    await expect(boot(both(), [LostInbox])).rejects.toThrow(/@Inbox on LostInbox\.handle names instance 'archiv', but no TransactionalMessageModule registration has that name/);
    await expect(boot(both(), [ArchiveInbox])).rejects.toThrow(
      /@Inbox on ArchiveInbox\.handle needs the inbox: set inbox: \{ enabled: true \} in the TransactionalMessageModule options of 'archive'/,
    );
    expect(() => Inbox({ instance: 'no spaces' })).toThrow(/@Inbox instance is "no spaces"/);
  });
});
