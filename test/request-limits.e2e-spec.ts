import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { KafkaPublisher, MessageStatus, TransactionalMessageModule, TransactionalMessageProducer, TransactionStatus } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_CLIENT, TestConsumer, uniqueTopic } from './support/kafka.js';
import { OwnBroker } from './support/own-broker.js';
import { FAST_RELAY } from './support/relay.fixture.js';
import { testPort } from './support/ports.js';

/** A broker that refuses requests over 3 MB by closing the connection, as every broker does over its socket.request.max.bytes (100 MB by default). */
const SOCKET_REQUEST_MAX_BYTES = 3 * 1024 * 1024;

describe('batches and the broker request limits (PostgreSQL, a broker with socket.request.max.bytes = 3 MB)', () => {
  const broker = new OwnBroker(testPort('TM_TEST_LIMITS_BROKER_PORT', 19392), undefined, { 'socket.request.max.bytes': String(SOCKET_REQUEST_MAX_BYTES) });
  const topic = { big: uniqueTopic('limits.big'), small: uniqueTopic('limits.small') };
  let db: TestDatabase;
  let consumer: TestConsumer;
  let app: INestApplicationContext;
  let producer: TransactionalMessageProducer;

  beforeAll(async () => {
    await broker.start();
    db = await createTestDatabase('postgres');
    await createTopics(Object.values(topic), 3, broker.brokers);
    consumer = await new TestConsumer(Object.values(topic), broker.brokers).start();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'limits',
          maxMessageBytes: 4_000_000,
          publisher: new KafkaPublisher({ ...KAFKA_CLIENT, brokers: broker.brokers, clientId: 'tm-test-limits' }),
          relay: { ...FAST_RELAY, batchSize: 500, maxAttempts: 2 },
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
    producer = app.get(TransactionalMessageProducer);
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await consumer?.stop();
    await db?.drop();
    await broker.stop();
  });

  const idsOf = (t: string) => consumer.of(t).map((r) => r.headers['tm-message-id']);
  const send = (t: string, key: string, body: unknown) =>
    producer.sendMessageInTransaction({ topic: t, key, body }, () => TransactionStatus.COMMIT).then((r) => r.messageId);

  it('a claim larger than a request may be is published in several requests: nothing stalls, per-key order holds', async () => {
    // Written before the relay can claim them one by one: one claim of 30 × 200 KB = 6 MB, over the broker's 3 MB.
    const written: Array<{ id: string; key: string }> = [];
    const blob = 'x'.repeat(200_000);
    const ids = await db.dataSource.transaction(async (manager) => {
      const out: string[] = [];
      for (let i = 0; i < 30; i++) {
        const key = `k${i % 5}`;
        const id = await producer.sendHalfMessage({ topic: topic.big, key, body: { i, blob } }, { manager });
        await producer.commit(id, { manager });
        written.push({ id, key });
        out.push(id);
      }
      // An unrelated topic behind them in the same claim.
      for (let i = 0; i < 5; i++) {
        const id = await producer.sendHalfMessage({ topic: topic.small, key: `s${i}`, body: { i } }, { manager });
        await producer.commit(id, { manager });
        out.push(id);
      }
      return out;
    });
    await consumer.waitFor('every message of both topics', () => ids.every((id) => idsOf(topic.big).includes(id) || idsOf(topic.small).includes(id)), 60_000);
    for (const key of ['k0', 'k1', 'k2', 'k3', 'k4']) {
      const expected = written.filter((w) => w.key === key).map((w) => w.id);
      const seen = consumer.of(topic.big).filter((r) => r.key === key).map((r) => r.headers['tm-message-id']);
      expect(seen.filter((id, i) => seen.indexOf(id) === i)).toEqual(expected);
    }
    for (const id of ids) await eventually(`${id} delivered`, async () => (await producer.getMessage(id))?.status === MessageStatus.DELIVERED);
  });

  it('a single message over the request limit is the message’s fault: retried, then DEAD, while other messages flow', async () => {
    const huge = await send(topic.big, 'huge', { blob: 'y'.repeat(3_500_000) });
    const after = await send(topic.small, 'after', { after: true });
    await consumer.waitFor('the small message written after the huge one', () => idsOf(topic.small).includes(after), 60_000);
    await eventually('the huge message DEAD', async () => (await producer.getMessage(huge))?.status === MessageStatus.DEAD, 60_000);
    const dead = (await producer.getMessage(huge))!;
    expect(dead.deliveryAttempts).toBe(2);
    expect(idsOf(topic.big)).not.toContain(huge);
    // The relay is not stuck: a later message of another key goes out.
    const later = await send(topic.big, randomUUID(), { later: true });
    await consumer.waitFor('a later message', () => idsOf(topic.big).includes(later), 60_000);
  });
});
