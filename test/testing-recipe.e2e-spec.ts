import 'reflect-metadata';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import {
  currentHalfMessage,
  MessageStatus,
  TransactionCheckHandler,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionContext,
  transactionalMessageMigrations,
  TransactionStatus,
  type HalfMessage,
} from '../src/index.js';
import { createTopics, eventually, KAFKA_BROKERS, KAFKA_CLIENT, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ShopOrder } from './support/shop.fixture.js';

// docs/testing.md's recipe for an application's integration tests: in-memory SQLite, the relay run on
// demand (relay.autoStart: false), no sleeping.
describe('testing recipe: in-memory SQLite, relay and checks on demand (real Kafka)', () => {
  const topic = uniqueTopic('recipe.order-paid');
  let dataSource: DataSource;
  let app: INestApplicationContext;
  let consumer: TestConsumer;
  const provider = new Map<string, 'paid' | 'pending'>();
  const checks: number[] = [];

  @Injectable()
  class OrderService {
    constructor(private readonly tx: TransactionContext) {}

    @TransactionalMessage<[string, boolean]>({ topic, key: ([id]) => id, body: ([id]) => ({ id }) })
    async pay(id: string, pending: boolean): Promise<void> {
      await this.tx.getRepository(ShopOrder).insert({ id, amount: 1 });
      provider.set(id, pending ? 'pending' : 'paid');
      if (pending) currentHalfMessage().unknown();
    }

    @TransactionCheckHandler({ topic })
    check(message: HalfMessage<{ id: string }>): TransactionStatus {
      checks.push(message.checkCount);
      // The seeds' example: the provider settles the payment by the second check.
      if (message.checkCount >= 2) provider.set(message.body.id, 'paid');
      return provider.get(message.body.id) === 'paid' ? TransactionStatus.COMMIT : TransactionStatus.UNKNOWN;
    }
  }

  beforeAll(async () => {
    await createTopics([topic]);
    consumer = await new TestConsumer([topic]).start();
    dataSource = await new DataSource({
      type: 'better-sqlite3',
      database: ':memory:',
      entities: [ShopOrder],
      synchronize: true,
      migrations: transactionalMessageMigrations(),
      migrationsRun: true,
    }).initialize();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource,
          producerGroup: 'shop',
          kafka: { ...KAFKA_CLIENT, brokers: KAFKA_BROKERS },
          checkImmunityMs: 0,
          relay: { autoStart: false },
          check: { intervalMs: 1 },
        }),
      ],
      providers: [OrderService],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
  });

  afterAll(async () => {
    await app?.close();
    await consumer?.stop();
    await dataSource?.destroy();
  });

  it('drain() publishes what is committed; runChecksNow() runs the due checks; nothing runs unasked', async () => {
    const relay = app.get(TransactionalMessageRelay);
    const producer = app.get(TransactionalMessageProducer);
    await app.get(OrderService).pay('paid-at-once', false);
    await app.get(OrderService).pay('pending', true);
    const [paid, pending] = (await dataSource.query(`SELECT id, message_key FROM transactional_message ORDER BY seq`)).map((r: { id: string }) => r.id);
    // autoStart: false: the relay has not run by itself.
    expect((await producer.getMessage(paid))?.status).toBe(MessageStatus.COMMITTED);
    expect(checks).toEqual([]);

    expect(await relay.drain()).toBe(1);
    // Published, and deleted by its mark (relay.retentionMs 0, the default): no delivered history.
    expect(await producer.getMessage(paid)).toBeNull();
    await consumer.waitFor('the drained message', () => consumer.of(topic).some((r) => r.headers['tm-message-id'] === paid));

    expect(await relay.runChecksNow()).toBe(1); // check #1: still pending
    expect((await producer.getMessage(pending))?.status).toBe(MessageStatus.HALF);
    // check #2 is due check.intervalMs (1 ms) later.
    await eventually('check #2 run', async () => (await relay.runChecksNow()) === 1);
    expect(checks).toEqual([1, 2]);
    expect((await producer.getMessage(pending))?.status).toBe(MessageStatus.COMMITTED);
    expect(await relay.drain()).toBe(1);
    await consumer.waitFor('the checked message', () => consumer.of(topic).some((r) => r.headers['tm-message-id'] === pending));
    expect(await relay.drain()).toBe(0);
  });
});
