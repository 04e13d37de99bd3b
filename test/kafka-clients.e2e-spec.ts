import 'reflect-metadata';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import {
  KAFKA_CLIENTS,
  KafkaPublisher,
  MessageStatus,
  PartialPublishError,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type KafkaClientName,
  type OutgoingMessage,
} from '../src/index.js';
import { InvalidModuleOptionsError } from '../src/errors/invalid-module-options.error.js';
import { installedKafkaClient } from '../src/publisher/kafka/kafka.publisher.js';
import { PublisherConfigurationError } from '../src/errors/publisher-configuration.error.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_BROKERS, TestConsumer, uniqueTopic } from './support/kafka.js';
import { FAST_RELAY } from './support/relay.fixture.js';

const PARTITIONS = 6;

/** Where the Java client (and kafkajs' DefaultPartitioner, its port) puts a key on a topic of PARTITIONS partitions. */
const javaPartitioner = Partitioners.DefaultPartitioner();
const javaPartition = (topic: string, key: string) =>
  javaPartitioner({
    topic,
    partitionMetadata: Array.from({ length: PARTITIONS }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] })),
    message: { key, value: null },
  });

const outgoing = (topic: string, key: string | null, i: number, extra: Partial<OutgoingMessage> = {}): OutgoingMessage => {
  const id = randomUUID();
  return {
    id,
    topic,
    key,
    value: Buffer.from(JSON.stringify({ i, key })),
    headers: { 'tm-message-id': id, 'tm-producer-group': 'clients', 'x-order': String(i) },
    timestamp: new Date(Date.UTC(2026, 11, 1, 12, 0, 0, i)),
    ...extra,
  };
};

/**
 * The same contract on every Kafka client the publisher can run on (`kafka.client`), against the
 * real broker: what reaches the topic, where each key lands, and how failures are classified.
 */
describe.each(KAFKA_CLIENTS)('the Kafka publisher on %s', (client: KafkaClientName) => {
  const topic = { records: uniqueTopic('clients.records'), relay: uniqueTopic('clients.relay') };
  let consumer: TestConsumer;
  // kafkajs' own log lines go to Nest's Logger at debug: not this test's output.
  const debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);

  beforeAll(async () => {
    await createTopics(Object.values(topic), PARTITIONS);
    consumer = await new TestConsumer(Object.values(topic)).start();
  });

  afterAll(async () => {
    debug.mockRestore();
    await consumer?.stop();
  });

  it('publishes keys, values, headers and timestamps as given; each key in order on the partition the Java client computes; keyless records spread', async () => {
    const publisher = new KafkaPublisher({ client, brokers: KAFKA_BROKERS, clientId: 'tm-test-clients' });
    const keys = Array.from({ length: 40 }, (_, k) => `order-${k}`);
    const sent: OutgoingMessage[] = [];
    try {
      await publisher.connect();
      for (let round = 0; round < 3; round++) {
        const batch = [...keys.map((key, k) => outgoing(topic.records, key, round * 100 + k)), ...Array.from({ length: 12 }, (_, n) => outgoing(topic.records, null, round * 100 + 50 + n))];
        await publisher.publish(batch);
        sent.push(...batch);
      }
    } finally {
      await publisher.close();
    }
    await consumer.waitFor('every record', (r) => r.filter((x) => x.topic === topic.records).length >= sent.length);
    const received = consumer.of(topic.records);
    expect(received).toHaveLength(sent.length);
    const byId = new Map(received.map((r) => [r.headers['tm-message-id'], r]));
    for (const message of sent) {
      const record = byId.get(message.id)!;
      expect(record).toBeDefined();
      expect(record.key).toBe(message.key);
      expect(record.value.equals(message.value)).toBe(true);
      expect(record.headers).toEqual(message.headers);
      if (message.key !== null) expect(record.partition).toBe(javaPartition(topic.records, message.key));
    }
    for (const key of keys) {
      const order = received.filter((r) => r.key === key).map((r) => Number(r.headers['x-order']));
      expect(order).toEqual([...order].sort((a, b) => a - b));
      expect(order).toHaveLength(3);
    }
    const keylessPartitions = new Set(received.filter((r) => r.key === null).map((r) => r.partition));
    expect(keylessPartitions.size).toBeGreaterThan(1);
  });

  it('keeps the record timestamp', async () => {
    const publisher = new KafkaPublisher({ client, brokers: KAFKA_BROKERS });
    const t = uniqueTopic('clients.time');
    await createTopics([t], 1);
    const message = outgoing(t, 'k', 7);
    try {
      await publisher.publish([message]);
    } finally {
      await publisher.close();
    }
    const { testKafka } = await import('./support/kafka.js');
    const reader = testKafka().consumer({ groupId: `tm-test-${randomUUID()}`, maxWaitTimeInMs: 100 });
    let timestamp: string | undefined;
    await reader.connect();
    try {
      await reader.subscribe({ topics: [t], fromBeginning: true });
      await reader.run({ eachMessage: async ({ message: m }) => void (timestamp = m.timestamp) });
      await eventually('the record', () => timestamp !== undefined);
    } finally {
      await reader.disconnect();
    }
    expect(Number(timestamp)).toBe(message.timestamp.getTime());
  });

  it('classifies what goes wrong, and publishes again after a refused batch', async () => {
    const publisher = new KafkaPublisher({ client, brokers: KAFKA_BROKERS });
    try {
      // Over the broker's message.max.bytes (1 MB by default): this message's fault, for good.
      const tooLarge = await publisher.publish([outgoing(topic.records, 'big', 1, { value: Buffer.alloc(1_200_000, 'x') })]).then(
        () => null,
        (error: unknown) => error,
      );
      expect(tooLarge).not.toBeNull();
      expect(publisher.classify(tooLarge)).toEqual({ kind: 'message', retriable: false });
      // The idempotent producer's sequence numbers moved past the refused batch: a fresh one publishes.
      const after = outgoing(topic.records, 'after-refusal', 2);
      await publisher.publish([after]);
      await consumer.waitFor('the record after the refusal', (r) => r.some((x) => x.headers['tm-message-id'] === after.id));
    } finally {
      await publisher.close();
    }

    // Nothing listens on port 1: an outage, not the messages' fault.
    const unreachable = new KafkaPublisher({ client, brokers: ['127.0.0.1:1'], connectionTimeoutMs: 200 });
    const refused = await unreachable.connect().then(
      () => null,
      (error: unknown) => error,
    );
    await unreachable.close();
    expect(unreachable.classify(refused)).toEqual({ kind: 'transport' });

    // SASL against the broker's PLAINTEXT listener: the client's configuration.
    const misconfigured = new KafkaPublisher({ client, brokers: KAFKA_BROKERS, sasl: { mechanism: 'plain', username: 'shop', password: 'wrong' } });
    const sasl = await misconfigured.connect().then(
      () => null,
      (error: unknown) => error,
    );
    await misconfigured.close();
    expect(misconfigured.classify(sasl)).toEqual({ kind: 'config' });
  });

  it('reports which messages a partly refused send wrote, and writes none of them twice', async () => {
    // One partition refuses its records (its batch is over the topic's max.message.bytes), the others take theirs.
    const limited = uniqueTopic('clients.limited');
    await createTopics([limited], PARTITIONS, KAFKA_BROKERS, [{ name: 'max.message.bytes', value: '20000' }]);
    const reader = await new TestConsumer([limited]).start();
    const publisher = new KafkaPublisher({ client, brokers: KAFKA_BROKERS, clientId: 'tm-test-partial' });
    try {
      await publisher.connect();
      const batch = Array.from({ length: 30 }, (_, i) => outgoing(limited, `key-${i}`, i));
      batch.splice(12, 0, outgoing(limited, 'big', 99, { value: Buffer.alloc(30_000, 'x') }));
      const refusedPartition = javaPartition(limited, 'big');
      const failed = await publisher.publish(batch).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failed).toBeInstanceOf(PartialPublishError);
      const partial = failed as PartialPublishError;
      const written = batch.filter((m) => javaPartition(limited, m.key!) !== refusedPartition);
      expect(written.length).toBeGreaterThan(0);
      expect(written.length).toBeLessThan(batch.length - 1);
      expect([...partial.accepted].sort()).toEqual(written.map((m) => m.id).sort());
      expect(publisher.classify(partial.cause)).toEqual({ kind: 'message', retriable: false });

      // A marker on every partition, published after: once each is read, everything before it on its partition was.
      const markers = Array.from({ length: 200 }, (_, i) => outgoing(limited, `marker-${i}`, 1000 + i)).filter(
        (m, i, all) => all.findIndex((o) => javaPartition(limited, o.key!) === javaPartition(limited, m.key!)) === i,
      );
      expect(markers).toHaveLength(PARTITIONS);
      await publisher.publish(markers);
      await reader.waitFor('every marker', (r) => markers.every((m) => r.some((x) => x.headers['tm-message-id'] === m.id)));
      const seen = reader.of(limited).map((r) => r.headers['tm-message-id']);
      for (const message of written) expect(seen.filter((id) => id === message.id)).toHaveLength(1);
      for (const message of batch.filter((m) => !written.includes(m))) expect(seen).not.toContain(message.id);
    } finally {
      await publisher.close();
      await reader.stop();
    }
  });

  describe('as the module`s kafka option (PostgreSQL)', () => {
    let db: TestDatabase;
    let app: INestApplicationContext | undefined;

    beforeAll(async () => {
      db = await createTestDatabase('postgres');
    });

    afterAll(async () => {
      await app?.close();
      await db?.drop();
    });

    const boot = async (kafka: Record<string, unknown>) => {
      const moduleRef = await Test.createTestingModule({
        imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'clients', kafka: kafka as never, relay: FAST_RELAY })],
      }).compile();
      moduleRef.useLogger(false);
      return moduleRef.init();
    };

    it('a configuration error fails the boot, naming it', async () => {
      await expect(boot({ client, brokers: KAFKA_BROKERS, sasl: { mechanism: 'plain', username: 'shop', password: 'wrong' } })).rejects.toThrow(
        PublisherConfigurationError,
      );
    });

    it('delivers committed messages in order per key and never a rolled-back one', async () => {
      app = await boot({ client, brokers: KAFKA_BROKERS, clientId: 'tm-test-clients-relay' });
      const producer = app.get(TransactionalMessageProducer);
      const committed: string[] = [];
      for (let i = 0; i < 30; i++) {
        const outcome = i % 5 === 4 ? TransactionStatus.ROLLBACK : TransactionStatus.COMMIT;
        const { messageId } = await producer.sendMessageInTransaction({ topic: topic.relay, key: `k${i % 3}`, body: { i } }, () => outcome);
        if (outcome === TransactionStatus.COMMIT) committed.push(messageId);
      }
      await eventually('all committed delivered', async () => {
        const rows = await Promise.all(committed.map((id) => producer.getMessage(id)));
        return rows.every((m) => m?.status === MessageStatus.DELIVERED);
      });
      await consumer.waitFor('the committed records', (r) => r.filter((x) => x.topic === topic.relay).length >= committed.length);
      const received = consumer.of(topic.relay);
      expect(received.map((r) => r.headers['tm-message-id']).sort()).toEqual([...committed].sort());
      for (const key of ['k0', 'k1', 'k2']) {
        const order = received.filter((r) => r.key === key).map((r) => (r.json as { i: number }).i);
        expect(order).toEqual([...order].sort((a, b) => a - b));
      }
    });
  });
});

describe('the kafka.client option', () => {
  it('is refused at boot when it names no client of the library', () => {
    const build = () => new KafkaPublisher({ client: 'node-rdkafka' as never, brokers: KAFKA_BROKERS });
    expect(build).toThrow(InvalidModuleOptionsError);
    expect(build).toThrow(/option 'kafka.client' is "node-rdkafka"; expected one of 'kafkajs', '@platformatic\/kafka'/);
  });

  it('without it, uses the client that is installed: @platformatic/kafka when both are (this repository has both)', async () => {
    const publisher = new KafkaPublisher({ brokers: KAFKA_BROKERS });
    expect(publisher.clientName).toBeUndefined(); // decided at the first connect
    await publisher.connect();
    try {
      expect(publisher.clientName).toBe('@platformatic/kafka');
      expect(await installedKafkaClient()).toBe('@platformatic/kafka');
    } finally {
      await publisher.close();
    }
    expect(new KafkaPublisher({ brokers: KAFKA_BROKERS, client: 'kafkajs' }).clientName).toBe('kafkajs');
  });
});
