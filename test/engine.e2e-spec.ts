import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { MessageStatus, TransactionStatus } from '../src/index.js';
import { TransactionalMessageEngine } from '../src/engine/transactional-message.engine.js';
import { MessageTableMissingError } from '../src/errors/message-table-missing.error.js';
import { resolveOptions } from '../src/options/resolve-options.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, KAFKA_BROKERS, KAFKA_CLIENT, TestConsumer, uniqueTopic } from './support/kafka.js';

// The engine is plain classes built with `new`: one per DataSource, no Nest application. Two of
// them in one process, on PostgreSQL and SQLite, each with its own relay and topic, against the
// real broker.

describe('an engine per DataSource, without Nest', () => {
  const topics = { pg: uniqueTopic('engine.pg'), lite: uniqueTopic('engine.lite') };
  let pg: TestDatabase;
  let lite: TestDatabase;
  let consumer: TestConsumer;
  const engines: TransactionalMessageEngine[] = [];

  const engineOn = (db: TestDatabase, producerGroup: string) => {
    const engine = new TransactionalMessageEngine(
      resolveOptions({
        dataSource: db.dataSource,
        producerGroup,
        kafka: { ...KAFKA_CLIENT, brokers: KAFKA_BROKERS, clientId: `tm-test-${producerGroup}` },
        relay: { autoStart: false },
        metrics: false,
      }),
    );
    engines.push(engine);
    return engine;
  };

  beforeAll(async () => {
    // No Nest application to give a logger to: keep the engines quiet.
    Logger.overrideLogger(false);
    [pg, lite] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('sqlite')]);
    await createTopics(Object.values(topics));
    consumer = await new TestConsumer(Object.values(topics)).start();
  });

  afterAll(async () => {
    for (const engine of engines) {
      await engine.stop();
      engine.release();
    }
    await consumer?.stop();
    await Promise.all([pg?.drop(), lite?.drop()]);
  });

  it('two engines store and publish their own messages; nothing crosses', async () => {
    const onPg = engineOn(pg, 'engine-pg');
    const onLite = engineOn(lite, 'engine-lite');
    for (const engine of [onPg, onLite]) {
      await engine.init();
      await engine.start();
    }
    const pgKey = randomUUID();
    const liteKey = randomUUID();
    const { messageId: pgId } = await onPg.producer.sendMessageInTransaction({ topic: topics.pg, key: pgKey, body: { on: 'pg' } }, () => TransactionStatus.COMMIT);
    const { messageId: liteId } = await onLite.producer.sendMessageInTransaction(
      { topic: topics.lite, key: liteKey, body: { on: 'lite' } },
      () => TransactionStatus.COMMIT,
    );
    expect(await onPg.producer.getMessage(liteId)).toBeNull();
    expect(await onLite.producer.getMessage(pgId)).toBeNull();

    expect(await onPg.relay.drain()).toBe(1);
    expect(await onLite.relay.drain()).toBe(1);
    await consumer.waitFor('both records', (received) => [pgKey, liteKey].every((key) => received.some((r) => r.key === key)));
    expect(consumer.of(topics.pg).map((r) => r.key)).toEqual([pgKey]);
    expect(consumer.of(topics.lite).map((r) => r.key)).toEqual([liteKey]);
    expect((await onPg.admin.summary()).counts[MessageStatus.COMMITTED] ?? 0).toBe(0);
  });

  it('init() fails with the fix on a DataSource without the message table, and stop() after it is safe', async () => {
    const bare = await createTestDatabase('sqlite', { migrate: false });
    try {
      const engine = engineOn(bare, 'engine-bare');
      await expect(engine.init()).rejects.toThrow(MessageTableMissingError);
      await engine.stop();
      engine.release();
    } finally {
      await bare.drop();
    }
  });
});
