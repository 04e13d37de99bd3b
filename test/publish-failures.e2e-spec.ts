import 'reflect-metadata';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { jest } from '@jest/globals';
import { createRequire } from 'node:module';
import { KafkaJSNumberOfRetriesExceeded } from 'kafkajs';
import {
  KafkaPublisher,
  MessageStatus,
  onTransactionalMessageEvent,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { PublisherConfigurationError } from '../src/errors/publisher-configuration.error.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_BROKERS, KAFKA_CLIENT, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, FAST_RELAY } from './support/relay.fixture.js';

// kafkajs' own factory of protocol errors by code (not exported from its entry point).
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error };

/** kafkajs with SASL against the broker's PLAINTEXT listener: refused with ILLEGAL_SASL_STATE, a configuration error. */
const MISCONFIGURED_KAFKA = { ...KAFKA_CLIENT, brokers: KAFKA_BROKERS, clientId: 'tm-test-sasl', sasl: { mechanism: 'plain' as const, username: 'shop', password: 'wrong' } };

describe('publish failures are classified by what they mean (PostgreSQL, real Kafka)', () => {
  const topic = { replicas: uniqueTopic('fail.replicas'), unknown: uniqueTopic('fail.unknown'), config: uniqueTopic('fail.config') };
  let db: TestDatabase;
  let consumer: TestConsumer;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    await createTopics(Object.values(topic));
    consumer = await new TestConsumer(Object.values(topic)).start();
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    await consumer?.stop();
    await db?.drop();
  });

  async function boot(options: Partial<TransactionalMessageModuleOptions>): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'failures',
          ...options,
          relay: { ...FAST_RELAY, maxAttempts: 1, ...options.relay },
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return app;
  }

  const commit = (app: INestApplicationContext, t: string, key: string) =>
    app.get(TransactionalMessageProducer).sendMessageInTransaction({ topic: t, key, body: { key } }, () => TransactionStatus.COMMIT).then((r) => r.messageId);
  const stored = (app: INestApplicationContext, id: string) => app.get(TransactionalMessageProducer).getMessage(id);

  /**
   * What the Kafka client throws after its retries when the cluster lacks in-sync replicas. Injected: a
   * single-node broker cannot refuse with NOT_ENOUGH_REPLICAS (Kafka caps the effective
   * min.insync.replicas at the replica count; tried with min.insync.replicas=2 on this broker).
   */
  const notEnoughReplicas = async (): Promise<Error> => {
    if (KAFKA_CLIENT.client !== '@platformatic/kafka') return new KafkaJSNumberOfRetriesExceeded(createErrorFromCode(19), { retryCount: 5, retryTime: 2_000 });
    const { MultipleErrors, ProtocolError } = await import('@platformatic/kafka');
    const attempt = () => new MultipleErrors('Producing messages failed.', [new ProtocolError('NOT_ENOUGH_REPLICAS')]);
    return new MultipleErrors('produce failed 6 times.', [attempt(), attempt(), attempt(), attempt(), attempt(), attempt()]);
  };

  it('NOT_ENOUGH_REPLICAS for as long as it lasts is an outage: no attempt is counted, nothing goes DEAD, all is delivered after it', async () => {
    const publisher = new ControlledPublisher();
    let outage = true;
    const refusal = await notEnoughReplicas();
    publisher.inject = () => (outage ? refusal : undefined);
    const app = await boot({ publisher });
    const ids = [await commit(app, topic.replicas, 'a'), await commit(app, topic.replicas, 'b')];
    // maxAttempts is 1: one counted attempt would make them DEAD.
    await eventually('five refused publishes', () => publisher.publishSettled >= 5, 30_000);
    for (const id of ids) expect(await stored(app, id)).toMatchObject({ status: MessageStatus.COMMITTED, deliveryAttempts: 0 });

    outage = false;
    await consumer.waitFor('both messages after the outage', () => ids.every((id) => consumer.of(topic.replicas).some((r) => r.headers['tm-message-id'] === id)), 30_000);
    await eventually('delivered', async () => (await Promise.all(ids.map((id) => stored(app, id)))).every((m) => m?.status === MessageStatus.DELIVERED));
  });

  it('an error nobody classifies is counted and logged as an error, but never makes the message DEAD', async () => {
    const publisher = new ControlledPublisher();
    let refusals = 0;
    publisher.inject = () => (refusals++ < 3 ? new Error('something the Kafka client never said before') : undefined);
    const errors = jest.spyOn(Logger.prototype, 'error');
    try {
      const app = await boot({ publisher });
      const id = await commit(app, topic.unknown, 'u');
      await consumer.waitFor('the message once the errors stop', () => consumer.of(topic.unknown).some((r) => r.headers['tm-message-id'] === id), 30_000);
      await eventually('delivered', async () => (await stored(app, id))?.status === MessageStatus.DELIVERED);
      // Three failed attempts and the successful one, with maxAttempts 1.
      expect((await stored(app, id))!.deliveryAttempts).toBe(4);
      const logged = errors.mock.calls.map(([text]) => String(text)).filter((text) => text.includes(id));
      expect(logged.filter((text) => text.includes('does not classify'))).toHaveLength(3);
    } finally {
      errors.mockRestore();
    }
  });

  it('a configuration error fails the boot with the built-in Kafka publisher', async () => {
    const attempt = boot({ kafka: MISCONFIGURED_KAFKA });
    await expect(attempt).rejects.toThrow(PublisherConfigurationError);
    await expect(boot({ kafka: MISCONFIGURED_KAFKA })).rejects.toThrow(/ILLEGAL_SASL_STATE.*Fix the module's kafka options/);
  });

  it('a configuration error met later is logged as an error on every retry and counts nothing against the messages', async () => {
    const publisher = new ControlledPublisher(new KafkaPublisher(MISCONFIGURED_KAFKA));
    const errors = jest.spyOn(Logger.prototype, 'error');
    try {
      const app = await boot({ publisher });
      const id = await commit(app, topic.config, 'c');
      await eventually('three refused connects', () => publisher.connectCalls >= 3, 30_000);
      expect(await stored(app, id)).toMatchObject({ status: MessageStatus.COMMITTED, deliveryAttempts: 0 });
      expect(errors.mock.calls.filter(([text]) => String(text).includes('The publisher is misconfigured (ILLEGAL_SASL_STATE')).length).toBeGreaterThanOrEqual(2);
    } finally {
      errors.mockRestore();
    }
  });

  it('an outage is not woken by commits (one connect and one log line per backoff step, none per commit), and backs off up to backoffMaxMs, past 30 s', async () => {
    const publisher = new ControlledPublisher(new KafkaPublisher(MISCONFIGURED_KAFKA));
    const errors = jest.spyOn(Logger.prototype, 'error');
    const waits: number[] = [];
    const off = onTransactionalMessageEvent('relay.unavailable', (event) => waits.push(event.retryInMs));
    try {
      const app = await boot({ publisher, relay: { backoffInitialMs: 40_000, backoffMaxMs: 60_000 } });
      await commit(app, topic.config, 'outage');
      await eventually('the first refused connect', () => waits.length >= 1);
      // Each commit rings the relay's doorbell; the outage's wait must not answer it.
      for (let i = 0; i < 30; i++) await commit(app, topic.config, `outage-${i}`);
      expect(publisher.connectCalls).toBe(1);
      expect(waits).toHaveLength(1);
      expect(errors.mock.calls.filter(([text]) => String(text).includes('The publisher is misconfigured')).length).toBe(1);
      // The first wait is backoffInitialMs ±20 %: more than the 30 s the relay used to cap an outage's wait at.
      expect(waits[0]).toBeGreaterThanOrEqual(32_000);
      expect(waits[0]).toBeLessThanOrEqual(48_000);
    } finally {
      off();
      errors.mockRestore();
    }
  });

  it('a broker that cannot be reached is reported once, with its cause, however often the relay retries', async () => {
    const lines: string[] = [];
    const spies = (['log', 'warn', 'error'] as const).map((level) =>
      jest.spyOn(Logger.prototype, level).mockImplementation(function (this: { context?: string }, message: unknown) {
        if (String(this?.context).startsWith('TransactionalMessage')) lines.push(`${level} ${String(message)}`);
      }),
    );
    const debug = jest.spyOn(Logger.prototype, 'debug');
    try {
      // Port 1 on loopback: connections are refused at once, so the retries come fast.
      const app = await boot({ kafka: { ...KAFKA_CLIENT, brokers: ['127.0.0.1:1'] }, relay: { backoffInitialMs: 20, backoffMaxMs: 100 } });
      await commit(app, topic.config, 'unreachable');
      await eventually('the relay retried', () => debug.mock.calls.filter(([m]) => String(m).startsWith('Downstream still unavailable')).length >= 2, 50_000);
      const reported = lines.filter((line) => !line.startsWith('log '));
      expect(reported.length).toBeGreaterThanOrEqual(1);
      expect(reported.length).toBeLessThanOrEqual(2); // the boot's check, and the relay's first failure
      for (const line of reported) expect(line).toMatch(/ECONNREFUSED/);
    } finally {
      spies.forEach((spy) => spy.mockRestore());
      debug.mockRestore();
    }
  });
});
