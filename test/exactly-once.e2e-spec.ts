// kafka.exactlyOnce on the real broker, both clients (docs/exactly-once.md): committed messages
// reach their topic once for read_committed readers, in key order; a batch Kafka committed and the
// database did not mark is never published again, neither by the relay that published it nor by
// a relay that takes its slots over (it finds the ids in the slot's last committed marks record).
// The faults that need a process killed or frozen are in test/faults (exactly-once variants).
import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  KAFKA_CLIENTS,
  KafkaPublisher,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
  type KafkaClientName,
  type KafkaOptions,
} from '../src/index.js';
import { InvalidModuleOptionsError } from '../src/errors/invalid-module-options.error.js';
import { resolveOptions } from '../src/options/resolve-options.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_BROKERS, testKafka, TestConsumer, uniqueTopic } from './support/kafka.js';
import { FAST_RELAY } from './support/relay.fixture.js';
import { OwnBroker } from './support/own-broker.js';
import { testPort } from './support/ports.js';

jest.setTimeout(120_000);

describe.each(KAFKA_CLIENTS)('kafka.exactlyOnce on %s', (client: KafkaClientName) => {
  let db: TestDatabase;
  const apps: INestApplicationContext[] = [];
  const dataSources: DataSource[] = [];
  const consumers: TestConsumer[] = [];
  const logged: string[] = [];
  let spies: { mockRestore(): void }[] = [];

  beforeAll(async () => {
    // Per block (describe.each): each block's lines go to its own list.
    spies = (['debug', 'log', 'warn', 'error'] as const).map((level) =>
      jest.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => void (level === 'debug' ? undefined : logged.push(String(message)))),
    );
    db = await createTestDatabase('postgres');
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const dataSource of dataSources.splice(0)) await dataSource.destroy();
    for (const consumer of consumers.splice(0)) await consumer.stop();
    await db.dataSource.query(`DELETE FROM ${db.tableName}`);
    logged.length = 0;
  });

  afterAll(async () => {
    for (const spy of spies) spy.mockRestore();
    await db?.drop();
  });

  /** The names of one test's exactly-once state in Kafka (nothing shared between tests or suites). */
  const scope = () => {
    const run = randomBytes(4).toString('hex');
    return { transactionalIdPrefix: `tm-test.eos.${run}`, marksTopic: `tm-test.eos-marks.${run}` };
  };

  async function instance(exactlyOnce: KafkaOptions['exactlyOnce'], relay: Record<string, unknown> = {}) {
    const dataSource = await new DataSource(db.options).initialize();
    dataSources.push(dataSource);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource,
          producerGroup: 'shop',
          kafka: { client, brokers: KAFKA_BROKERS, clientId: 'tm-test-eos', exactlyOnce },
          relay: { ...FAST_RELAY, ...relay },
        }),
      ],
    }).compile();
    const app = await moduleRef.init();
    apps.push(app);
    return { app, producer: app.get(TransactionalMessageProducer), relay: app.get(TransactionalMessageRelay) };
  }

  async function write(producer: TransactionalMessageProducer, topic: string, keys: (string | null)[], perKey: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < perKey; i++) {
      for (const key of keys) {
        const { messageId } = await producer.sendMessageInTransaction({ topic, key: key ?? undefined, body: { key, i } }, () => TransactionStatus.COMMIT);
        ids.push(messageId);
      }
    }
    return ids;
  }

  const statuses = async () => (await db.dataSource.query(`SELECT status, COUNT(*)::int AS n FROM ${db.tableName} GROUP BY status ORDER BY status`)) as { status: string; n: number }[];

  async function reader(topic: string): Promise<TestConsumer> {
    const consumer = await new TestConsumer([topic]).start(); // kafkajs: read_committed
    consumers.push(consumer);
    return consumer;
  }

  it('publishes every committed message once, each key in order, with its headers; the marks topic has a partition per slot', async () => {
    const topic = uniqueTopic('eos.publish');
    await createTopics([topic], 6);
    const names = scope();
    const { producer, relay } = await instance(names, { autoStart: false });
    const keys = ['order-1', 'order-2', 'order-3', null];
    const ids = await write(producer, topic, keys, 25);
    expect(await relay.drain()).toBe(100);
    const consumer = await reader(topic);
    await consumer.waitFor('the 100 messages', (r) => r.length >= 100);
    // Nothing more arrives: a second copy would come right behind.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const received = consumer.of(topic);
    expect(received.map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
    for (const key of keys.filter((k): k is string => k !== null)) {
      expect(received.filter((r) => r.key === key).map((r) => (r.json as { i: number }).i)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    }
    expect(await statuses()).toEqual([{ status: 'DELIVERED', n: 100 }]);
    const admin = testKafka().admin();
    await admin.connect();
    try {
      const [marks] = (await admin.fetchTopicMetadata({ topics: [names.marksTopic] })).topics;
      expect(marks.partitions.length).toBe(8);
      const [config] = (await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: names.marksTopic, configNames: ['cleanup.policy'] }] })).resources;
      expect(config.configEntries[0].configValue).toBe('compact');
    } finally {
      await admin.disconnect();
    }
  });

  /** A trigger that makes every mark (COMMITTED → DELIVERED) fail while `tm_fail_mark` holds a row, counting the failures. */
  async function failMarks(): Promise<{ failures(): Promise<number>; stop(): Promise<void> }> {
    const t = `"${db.tableName}"`;
    await db.dataSource.query(`CREATE TABLE IF NOT EXISTS tm_fail_mark (on_ boolean)`);
    await db.dataSource.query(`DROP SEQUENCE IF EXISTS tm_mark_failures`);
    await db.dataSource.query(`CREATE SEQUENCE tm_mark_failures`);
    await db.dataSource.query(`INSERT INTO tm_fail_mark VALUES (true)`);
    await db.dataSource.query(
      `CREATE OR REPLACE FUNCTION tm_fail_mark() RETURNS trigger AS $$ BEGIN ` +
        `IF EXISTS (SELECT 1 FROM tm_fail_mark) THEN PERFORM nextval('tm_mark_failures'); RAISE EXCEPTION 'injected: the mark fails'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
    );
    await db.dataSource.query(`DROP TRIGGER IF EXISTS tm_fail_mark ON ${t}`);
    await db.dataSource.query(`CREATE TRIGGER tm_fail_mark BEFORE UPDATE ON ${t} FOR EACH ROW WHEN (NEW.status = 'DELIVERED') EXECUTE FUNCTION tm_fail_mark()`);
    return {
      // A sequence is not rolled back with the failed statement: it counts the attempts.
      failures: async () => Number((await db.dataSource.query(`SELECT last_value, is_called FROM tm_mark_failures`)).map((r: any) => (r.is_called ? r.last_value : 0))[0]),
      stop: async () => {
        await db.dataSource.query(`DELETE FROM tm_fail_mark`);
      },
    };
  }

  it('a batch Kafka committed whose mark failed: the same relay reads it again and again and never publishes it again', async () => {
    const topic = uniqueTopic('eos.mark-fails');
    await createTopics([topic], 3);
    const marks = await failMarks();
    const { producer } = await instance(scope());
    const ids = await write(producer, topic, ['a', 'b', 'c'], 10);
    const consumer = await reader(topic);
    await consumer.waitFor('the 30 messages', (r) => r.length >= 30);
    // The relay reads the committed messages again after each failed mark: several rounds.
    await eventually('three failed marks', async () => (await marks.failures()) >= 3, 30_000);
    expect(await statuses()).toEqual([{ status: 'COMMITTED', n: 30 }]);
    expect(consumer.of(topic).length).toBe(30);
    await marks.stop();
    await eventually('all delivered', async () => JSON.stringify(await statuses()) === JSON.stringify([{ status: 'DELIVERED', n: 30 }]), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(consumer.of(topic).map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
  });

  it('a relay that takes the slots over finds what Kafka committed and the database did not mark, marks it, and does not publish it again', async () => {
    const topic = uniqueTopic('eos.takeover');
    await createTopics([topic], 3);
    const names = scope();
    const marks = await failMarks();
    const first = await instance(names);
    const ids = await write(first.producer, topic, ['a', 'b', 'c', 'd'], 10);
    const consumer = await reader(topic);
    await consumer.waitFor('the 40 messages', (r) => r.length >= 40);
    await eventually('a failed mark', async () => (await marks.failures()) >= 1, 30_000);
    // The first relay goes (its slots are given back); the database answers again.
    await apps.shift()!.close();
    await marks.stop();
    expect(await statuses()).toEqual([{ status: 'COMMITTED', n: 40 }]);
    expect(consumer.of(topic).length).toBe(40);

    await instance(names);
    await eventually('all delivered', async () => JSON.stringify(await statuses()) === JSON.stringify([{ status: 'DELIVERED', n: 40 }]), 30_000);
    expect(logged.some((line) => /Slot \d+: marked \d+ message\(s\) delivered that Kafka had committed/.test(line))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(consumer.of(topic).map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
  });

  it('a relay that loses one bucket of a slot gives the slot back whole; it is taken whole again, and nothing is published twice', async () => {
    const topic = uniqueTopic('eos.bucket-lost');
    await createTopics([topic], 3);
    const names = scope();
    await instance(names, { leaseMs: 1_500 });
    const owned = async () => (await db.dataSource.query(`SELECT bucket, owner, token FROM "${db.tableName}_bucket" WHERE owner IS NOT NULL AND expires_at > now() ORDER BY bucket`)) as { bucket: number; owner: string; token: string }[];
    await eventually('the relay holds all 256 buckets', async () => (await owned()).length === 256, 30_000);
    // Bucket 5's lease taken away (as if it had run out and another relay had taken it): the
    // relay's next renewal finds it lost and gives back slot 0's other 31 buckets.
    await db.dataSource.query(`UPDATE "${db.tableName}_bucket" SET owner = 'someone-else', token = 'theirs', expires_at = now() + interval '2 seconds' WHERE bucket = 5`);
    await eventually('slot 0 given back whole', async () => (await owned()).filter((o) => o.bucket < 32 && o.owner !== 'someone-else').length === 0, 30_000);
    expect((await owned()).filter((o) => o.bucket >= 32)).toHaveLength(224);
    // Once bucket 5 is free again, the slot is taken whole, under one token.
    await eventually('slot 0 taken again whole', async () => {
      const slot0 = (await owned()).filter((o) => o.bucket < 32);
      return slot0.length === 32 && new Set(slot0.map((o) => o.token)).size === 1;
    }, 30_000);
    const ids = await write(apps[0].get(TransactionalMessageProducer), topic, ['a', 'b', 'c', 'd', 'e', 'f'], 5);
    const consumer = await reader(topic);
    await eventually('all delivered', async () => JSON.stringify(await statuses()) === JSON.stringify([{ status: 'DELIVERED', n: 30 }]), 30_000);
    await consumer.waitFor('the 30 messages', (r) => r.length >= 30);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(consumer.of(topic).map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
  });

  it('two relays share the slots whole and publish each message once', async () => {
    const topic = uniqueTopic('eos.two-relays');
    await createTopics([topic], 6);
    const names = scope();
    const a = await instance(names);
    await instance(names);
    // The second relay's share comes at a rebalance after the first took all the slots: written
    // before it, the messages could all be published by the first (CI saw one owner at the end).
    const owners = async () => (await db.dataSource.query(`SELECT bucket, owner FROM "${db.tableName}_bucket" WHERE owner IS NOT NULL AND expires_at > now() ORDER BY bucket`)) as { bucket: number; owner: string }[];
    await eventually('the two relays hold the slots between them', async () => {
      const held = await owners();
      return held.length === 256 && new Set(held.map((o) => o.owner)).size === 2;
    }, 30_000);
    const keys = Array.from({ length: 16 }, (_, k) => `key-${k}`);
    const ids = await write(a.producer, topic, keys, 6);
    const consumer = await reader(topic);
    await eventually('all delivered', async () => JSON.stringify(await statuses()) === JSON.stringify([{ status: 'DELIVERED', n: 96 }]), 60_000);
    await consumer.waitFor('the 96 messages', (r) => r.length >= 96);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(consumer.of(topic).map((r) => r.headers['tm-message-id']).sort()).toEqual([...ids].sort());
    for (const key of keys) expect(consumer.of(topic).filter((r) => r.key === key).map((r) => (r.json as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5]);
    // Each slot's 32 buckets are held by one relay, and both relays still hold slots.
    const held = await owners();
    expect(held).toHaveLength(256);
    for (let slot = 0; slot < 8; slot++) {
      const inSlot = new Set(held.filter((o) => Math.floor(o.bucket / 32) === slot).map((o) => o.owner));
      expect(inSlot.size).toBe(1);
    }
    expect(new Set(held.map((o) => o.owner)).size).toBe(2);
  });
});

describe('kafka.exactlyOnce on a cluster that cannot serve transactions', () => {
  // One broker whose __transaction_state topic cannot be created (3 replicas wanted, 1 broker).
  const broker = new OwnBroker(testPort('TM_TEST_TXN_BROKER_PORT', 19492), undefined, { 'transaction.state.log.replication.factor': '3' });
  let db: TestDatabase;
  const warnings: string[] = [];
  let spies: { mockRestore(): void }[] = [];

  beforeAll(async () => {
    spies = (['debug', 'log', 'warn', 'error'] as const).map((level) =>
      jest.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => void (level === 'warn' || level === 'error' ? warnings.push(String(message)) : undefined)),
    );
    await broker.start();
    db = await createTestDatabase('postgres');
  }, 240_000);

  afterAll(async () => {
    for (const spy of spies) spy.mockRestore();
    await db?.drop();
    await broker.stop();
  });

  it.each(KAFKA_CLIENTS)('on %s: the relay says what the cluster must allow and counts nothing against the messages', async (client) => {
    warnings.length = 0;
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          kafka: { client, brokers: broker.brokers, clientId: 'tm-test-eos', exactlyOnce: { transactionalIdPrefix: `tm-test.no-txn.${randomBytes(4).toString('hex')}`, marksTopic: `tm-test.no-txn-marks.${randomBytes(4).toString('hex')}` } },
          relay: FAST_RELAY,
        }),
      ],
    }).compile();
    const app = await moduleRef.init();
    try {
      await app.get(TransactionalMessageProducer).sendMessageInTransaction({ topic: 'tm-test.no-txn', key: 'k', body: { n: 1 } }, () => TransactionStatus.COMMIT);
      await eventually('the relay reports it', () => warnings.some((w) => w.startsWith('Downstream unavailable (') && w.includes('Kafka did not start the transactions of')), 60_000).catch((error: Error) => {
        throw new Error(`${error.message}; it said:\n${warnings.join('\n')}`);
      });
      const warning = warnings.find((w) => w.includes('Kafka did not start the transactions of'))!;
      expect(warning).toMatch(/tm-slot-\d+ .*transaction\.state\.log\.replication\.factor.*docs\/exactly-once\.md/);
      const [row] = await db.dataSource.query(`SELECT status, delivery_attempts FROM "${db.tableName}"`);
      expect(row).toEqual({ status: 'COMMITTED', delivery_attempts: 0 });
    } finally {
      await app.close();
      await db.dataSource.query(`DELETE FROM "${db.tableName}"`);
    }
  });
});

describe('kafka.exactlyOnce: bad values', () => {
  const dataSource = { options: { type: 'postgres' }, transaction: () => undefined } as unknown as DataSource;
  const base = { dataSource, producerGroup: 'shop', kafka: { brokers: ['127.0.0.1:9092'] } };
  const refused = (exactlyOnce: unknown, message: RegExp) => {
    expect(() => resolveOptions({ ...base, kafka: { ...base.kafka, exactlyOnce: exactlyOnce as KafkaOptions['exactlyOnce'] } })).toThrow(message);
  };

  it('names the option, the value and the fix', () => {
    refused('yes', /option 'kafka.exactlyOnce' is "yes"; expected true, false, or \{ transactionalIdPrefix\?, marksTopic\? \}/);
    refused({ marksTopic: 'bad topic' }, /'kafka.exactlyOnce.marksTopic' is "bad topic"; expected a Kafka topic name/);
    refused({ transactionalIdPrefix: '' }, /'kafka.exactlyOnce.transactionalIdPrefix' is ""; expected a non-empty string/);
    refused({ slots: 4 }, /'kafka.exactlyOnce.slots' is 4; expected no such option/);
    expect(() => resolveOptions({ ...base, producerGroup: 'shop', kafka: { ...base.kafka, exactlyOnce: true } })).not.toThrow();
  });

  it('new KafkaPublisher() with exactlyOnce needs both names (it knows no producer group or table)', () => {
    expect(() => new KafkaPublisher({ brokers: ['127.0.0.1:9092'], exactlyOnce: true })).toThrow(InvalidModuleOptionsError);
    expect(() => new KafkaPublisher({ brokers: ['127.0.0.1:9092'], exactlyOnce: { marksTopic: 'm' } })).toThrow(/KafkaPublisher option 'kafka.exactlyOnce.transactionalIdPrefix'.*no default/);
    expect(new KafkaPublisher({ brokers: ['127.0.0.1:9092'], exactlyOnce: { marksTopic: 'm', transactionalIdPrefix: 'p' } }).slotTransactions?.bucketsPerSlot).toBe(32);
  });
});
