import 'reflect-metadata';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { KafkaPublisher, TransactionalMessage, TransactionalMessageModule } from '../src/index.js';
import { createTestDatabase, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_CLIENT, TestConsumer, testKafka, uniqueTopic } from './support/kafka.js';
import { OwnBroker } from './support/own-broker.js';
import { FAST_RELAY } from './support/relay.fixture.js';
import { testPort } from './support/ports.js';

const topic = uniqueTopic('broker-restart');

@Injectable()
class Orders {
  @TransactionalMessage<[string, number]>({ topic, key: ([key]) => key, body: ([, n]) => ({ n }) })
  async pay(key: string, n: number): Promise<void> {
    void [key, n];
  }
}

describe('the Kafka broker stopped and restarted mid-run (PostgreSQL)', () => {
  const broker = new OwnBroker(testPort('TM_TEST_BROKER_PORT', 19092));
  let db: TestDatabase;
  let app: INestApplicationContext | undefined;
  let consumer: TestConsumer | undefined;

  beforeAll(async () => {
    await broker.start();
    db = await createTestDatabase('postgres');
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await consumer?.stop().catch(() => undefined);
    await db?.drop();
    await broker.stop();
  }, 120_000);

  it('loses nothing and keeps per-key order across two broker restarts', async () => {
    await createTopics([topic], 3, broker.brokers);
    consumer = await new TestConsumer([topic], broker.brokers).start();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          publisher: new KafkaPublisher({ ...KAFKA_CLIENT, brokers: broker.brokers, clientId: 'tm-test-restart', connectionTimeoutMs: 500, requestTimeoutMs: 3_000 }),
          relay: { ...FAST_RELAY, batchSize: 50, maxAttempts: 1_000 },
        }),
      ],
      providers: [Orders],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    app = await moduleRef.init();
    const orders = app.get(Orders);
    const keys = ['a', 'b', 'c', 'd'];
    let n = 0;
    const write = async (count: number) => {
      for (let i = 0; i < count; i++, n++) await orders.pay(keys[n % keys.length], n);
    };

    await write(100);
    await consumer.waitFor('the first 100', () => consumer!.received.length >= 100, 60_000);
    // What is checked is what reached the broker; whether a kafkajs consumer rides out two broker
    // restarts is kafkajs' business (its retry budget can run out while a restart takes long under
    // load). A fresh consumer reads the whole topic at the end.
    await consumer.stop();
    for (let restart = 0; restart < 2; restart++) {
      await broker.stop();
      await write(100); // committed while the broker is down: stored, waiting
      await broker.start();
    }
    await write(100);

    // First the relay's side (every row published and marked), then the consumer's.
    await eventually('all marked delivered', async () => (await messageRows(db)).every((r) => r.status === 'DELIVERED'), 120_000).catch(async (error) => {
      const rows = await messageRows(db);
      const counts = rows.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
      throw new Error(`${(error as Error).message}: ${JSON.stringify(counts)}, leased ${rows.filter((r) => r.lease_token).length}`);
    });
    consumer = await new TestConsumer([topic], broker.brokers).start();
    const distinct = () => new Set(consumer!.received.map((r) => r.headers['tm-message-id'])).size;
    await consumer.waitFor('all 400 messages', () => distinct() >= 400, 120_000).catch(async (error) => {
      const admin = testKafka(broker.brokers).admin();
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(topic);
      await admin.disconnect();
      const onTopic = offsets.reduce((sum, p) => sum + Number(p.high), 0);
      throw new Error(`${(error as Error).message}: consumer saw ${distinct()} distinct, the topic holds ${onTopic} records`);
    });
    const rows = await messageRows(db);
    expect(rows).toHaveLength(400);
    const received = consumer.received.map((r) => r.headers['tm-message-id']);
    expect(new Set(received)).toEqual(new Set(rows.map((r) => r.id)));
    // Per key, the first delivery of each message follows the write order.
    for (const key of keys) {
      const firstSeen = [...new Set(consumer.received.filter((r) => r.key === key).map((r) => r.headers['tm-message-id']))];
      expect(firstSeen).toEqual(rows.filter((r) => r.message_key === key).map((r) => r.id));
    }
  }, 300_000);
});
