import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { KafkaJSNumberOfRetriesExceeded } from 'kafkajs';
import { createRequire } from 'node:module';
import {
  KAFKA_CLIENTS,
  KafkaPublisher,
  MessageStatus,
  PartialPublishError,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  type KafkaClientName,
  type MessagePublisher,
  type OutgoingMessage,
  type PublishFailure,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_BROKERS, TestConsumer, uniqueTopic } from './support/kafka.js';
import { FAST_RELAY } from './support/relay.fixture.js';

const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error };

const PARTITIONS = 6;

/**
 * A send that one partition refuses and the others write: the relay marks what was written and
 * publishes only the rest again (before, the whole batch went out again: 26 of 30 messages twice).
 */
describe('a partly refused publish (PostgreSQL, real Kafka)', () => {
  let db: TestDatabase;
  const apps: INestApplicationContext[] = [];

  // A database per test: one table serves one producer group, and a test leaves a DEAD message behind.
  beforeEach(async () => {
    db = await createTestDatabase('postgres');
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await db?.drop();
  });

  async function boot(producerGroup: string, publisher: MessagePublisher, relay: Record<string, unknown> = {}): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({
      imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup, publisher, relay: { ...FAST_RELAY, ...relay } })],
    }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return app;
  }

  /** Commits the messages in one transaction (one claim), in the order given; returns their ids. */
  const commitAll = (app: INestApplicationContext, messages: { topic: string; key: string; body: unknown }[]) =>
    db.dataSource.transaction(async (manager) => {
      const producer = app.get(TransactionalMessageProducer);
      const ids: string[] = [];
      for (const message of messages) {
        const id = await producer.sendHalfMessage(message, { manager });
        await producer.commit(id, { manager });
        ids.push(id);
      }
      return ids;
    });

  describe.each(KAFKA_CLIENTS)('on %s', (client: KafkaClientName) => {
    it('a partition that refuses its records costs only those: every other message is in the topic once, the culprit is DEAD', async () => {
      const topic = uniqueTopic('partial.limited');
      await createTopics([topic], PARTITIONS, KAFKA_BROKERS, [{ name: 'max.message.bytes', value: '20000' }]);
      const consumer = await new TestConsumer([topic]).start();
      try {
        const group = `partial_${client === 'kafkajs' ? 'kjs' : 'plt'}`;
        const app = await boot(group, new KafkaPublisher({ client, brokers: KAFKA_BROKERS, clientId: 'tm-test-partial' }));
        const messages = Array.from({ length: 30 }, (_, i) => ({ topic, key: `key-${i % 10}`, body: { i } }));
        // Over the topic's max.message.bytes: its partition's records are refused with it.
        messages.splice(12, 0, { topic, key: 'big', body: { i: -1, blob: 'x'.repeat(30_000) } as never });
        const ids = await commitAll(app, messages);
        const bigId = ids[12];
        const small = ids.filter((id) => id !== bigId);
        const producer = app.get(TransactionalMessageProducer);
        await eventually('the big message DEAD, the others delivered', async () => {
          const rows = await Promise.all(ids.map((id) => producer.getMessage(id)));
          return rows.every((m) => m?.status === (m?.id === bigId ? MessageStatus.DEAD : MessageStatus.DELIVERED));
        });
        // A marker per key after the rest: once each is read, everything before it on its partition was.
        const keys = [...new Set(messages.map((m) => m.key))].filter((k) => k !== 'big');
        const markers = await commitAll(app, keys.map((key) => ({ topic, key, body: { marker: true } })));
        await consumer.waitFor('every marker', (r) => markers.every((id) => r.some((x) => x.headers['tm-message-id'] === id)));
        const seen = consumer.of(topic).map((r) => r.headers['tm-message-id']);
        const twice = small.filter((id) => seen.filter((s) => s === id).length !== 1);
        expect(twice).toEqual([]);
        expect(seen).not.toContain(bigId);
        for (const key of keys) {
          const order = consumer.of(topic).filter((r) => r.key === key && !(r.json as { marker?: boolean }).marker).map((r) => (r.json as { i: number }).i);
          expect(order).toEqual(messages.filter((m) => m.key === key).map((m) => (m.body as { i: number }).i));
        }
      } finally {
        await consumer.stop();
      }
    });
  });

  it('a partition without enough in-sync replicas holds back only its own messages: the others are marked once, none is published again during the outage, and a key never goes out on its second topic before its first', async () => {
    const topic = { ok: uniqueTopic('partial.ok'), short: uniqueTopic('partial.short') };
    await createTopics(Object.values(topic), 3);
    const publisher = new ShortOfReplicas(topic.short);
    const app = await boot('partial_isr', publisher);
    // `shared` has its first message on the refusing topic and its second on the other: the
    // second must wait for the first. The others are on the healthy topic only.
    const messages = [
      { topic: topic.ok, key: 'a', body: { n: 1 } },
      { topic: topic.short, key: 'shared', body: { n: 2 } },
      { topic: topic.ok, key: 'b', body: { n: 3 } },
      { topic: topic.ok, key: 'shared', body: { n: 4 } },
      { topic: topic.ok, key: 'a', body: { n: 5 } },
    ];
    const ids = await commitAll(app, messages);
    await eventually('three refused publishes', () => publisher.refused >= 3, 30_000);
    // The healthy topic's messages of other keys went out once, the shared key's second did not.
    expect(publisher.written).toEqual([ids[0], ids[2], ids[4]]);
    const producer = app.get(TransactionalMessageProducer);
    // Acknowledged before marked: wait for the marks.
    for (const i of [0, 2, 4]) await eventually(`message ${i} marked delivered`, async () => (await producer.getMessage(ids[i]))?.status === MessageStatus.DELIVERED);
    for (const i of [1, 3]) expect(await producer.getMessage(ids[i])).toMatchObject({ status: MessageStatus.COMMITTED, deliveryAttempts: 0 });

    publisher.outage = false;
    await eventually('all delivered', async () => (await Promise.all(ids.map((id) => producer.getMessage(id)))).every((m) => m?.status === MessageStatus.DELIVERED));
    expect(publisher.written).toEqual([ids[0], ids[2], ids[4], ids[1], ids[3]]);
  });

  it("a message refused for good after a partial refusal leaves the request's other messages to go out: a key's message kept for the next request is not dropped in its place", async () => {
    const topic = { ok: uniqueTopic('partial.ok2'), short: uniqueTopic('partial.short2') };
    await createTopics(Object.values(topic), 3);
    // The partition of `poison` refuses it for good (too large); the rest is written.
    const publisher = new ShortOfReplicas(topic.short, new Set(['poison']));
    // A ten-minute lease: a message left neither published nor given back would wait for it.
    const app = await boot('partial_dead', publisher, { leaseMs: 600_000 });
    // `k` is on both topics: its second message waits for the next request, and sits before
    // `poison` in the claim when the first request comes back partly refused.
    const ids = await commitAll(app, [
      { topic: topic.ok, key: 'k', body: { n: 1 } },
      { topic: topic.short, key: 'k', body: { n: 2 } },
      { topic: topic.short, key: 'poison', body: { n: 3 } },
    ]);
    const producer = app.get(TransactionalMessageProducer);
    await eventually('the poison DEAD, the rest delivered', async () => {
      const [first, second, poison] = await Promise.all(ids.map((id) => producer.getMessage(id)));
      return first?.status === MessageStatus.DELIVERED && second?.status === MessageStatus.DELIVERED && poison?.status === MessageStatus.DEAD;
    });
    expect(publisher.written).toEqual([ids[0], ids[1]]);
    // Refused once, as part of the first request: not sent again in the claim that marked it DEAD.
    expect(publisher.refusedIds).toEqual([ids[2]]);
  });
});

/**
 * The real Kafka publisher, except that while `outage` holds, the partition of `shortTopic`
 * answers NOT_ENOUGH_REPLICAS as a cluster with too few in-sync replicas does (a single-node
 * broker cannot: Kafka caps min.insync.replicas at the replica count) while the others are
 * written, and says so as the built-in publishers do: a PartialPublishError.
 */
class ShortOfReplicas implements MessagePublisher {
  outage = true;
  refused = 0;
  /** Ids Kafka acknowledged, in order. */
  readonly written: string[] = [];
  private readonly inner = new KafkaPublisher({ client: 'kafkajs', brokers: KAFKA_BROKERS, clientId: 'tm-test-partial-isr' });

  /** Ids refused for good (MESSAGE_TOO_LARGE), in order. */
  readonly refusedIds: string[] = [];

  /** `poisonKeys`: the messages of these keys on `shortTopic` are refused for good instead, outage or not. */
  constructor(
    private readonly shortTopic: string,
    private readonly poisonKeys?: ReadonlySet<string>,
  ) {}

  connect(): Promise<void> {
    return this.inner.connect();
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    const refused = this.poisonKeys
      ? messages.filter((m) => m.topic === this.shortTopic && m.key !== null && this.poisonKeys!.has(m.key))
      : this.outage
        ? messages.filter((m) => m.topic === this.shortTopic)
        : [];
    const rest = messages.filter((m) => !refused.includes(m));
    if (rest.length > 0) {
      await this.inner.publish(rest);
      this.written.push(...rest.map((m) => m.id));
    }
    if (refused.length === 0) return;
    this.refused++;
    if (this.poisonKeys) this.refusedIds.push(...refused.map((m) => m.id));
    const error = this.poisonKeys ? createErrorFromCode(10) : new KafkaJSNumberOfRetriesExceeded(createErrorFromCode(19), { retryCount: 5, retryTime: 2_000 });
    if (rest.length === 0) throw error;
    throw new PartialPublishError(new Set(rest.map((m) => m.id)), error, messages.length);
  }

  classify(error: unknown): PublishFailure {
    return this.inner.classify(error);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
