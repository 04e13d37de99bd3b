import 'reflect-metadata';
import { Controller, Get, Injectable, Module, Req, Res, type INestApplication, type ModuleMetadata, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import {
  getTransactionalInboxToken,
  getTransactionalMessageRelayToken,
  TransactionalInbox,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, InjectedFailure } from './support/relay.fixture.js';

/** The value of the first series of `metric` with all of `labels`, in a Prometheus text scrape. */
const value = (text: string, metric: string, labels: Record<string, string>) => {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${metric}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

/** An application whose /metrics route serves `exporter`'s scrape, with the modules given. */
async function startMetricsApp(exporter: PrometheusExporter, imports: ModuleMetadata['imports'], providers: Provider[]): Promise<INestApplication> {
  @Controller()
  class MetricsController {
    @Get('metrics')
    scrape(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
      exporter.getMetricsRequestHandler(request, response);
    }
  }
  @Module({ imports, controllers: [MetricsController], providers })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  return app;
}

// docs/operations.md's Prometheus recipe: OpenTelemetry's Prometheus exporter served by the application's
// own /metrics route, scraped over HTTP.
describe('metrics: OpenTelemetry, scraped by Prometheus from /metrics (PostgreSQL, real Kafka)', () => {
  const topic = uniqueTopic('metrics');
  const exporter = new PrometheusExporter({ preventServerStart: true });
  let db: TestDatabase;
  let app: INestApplication;
  let url: string;
  const refused = new Set<string>();

  @Controller()
  class MetricsController {
    @Get('metrics')
    scrape(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
      exporter.getMetricsRequestHandler(request, response);
    }
  }

  @Injectable()
  class Orders {
    @TransactionalMessage<[string]>({ topic, key: ([id]) => id, body: ([id]) => ({ id }) })
    async pay(id: string): Promise<void> {
      void id;
    }
  }

  beforeAll(async () => {
    // Registered before the application is created, as OpenTelemetry requires.
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
    db = await createTestDatabase('postgres');
    await createTopics([topic]);
    const publisher = new ControlledPublisher();
    publisher.inject = (messages) => (messages.some((m) => refused.has(m.id)) ? new InjectedFailure('refused', { kind: 'message', retriable: false }) : undefined);
    @Module({
      imports: [
        TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'metrics', publisher, relay: { autoStart: false } }),
      ],
      controllers: [MetricsController],
      providers: [Orders],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
    await exporter.shutdown();
    metrics.disable();
  });

  const scrape = async () => (await fetch(`${url}/metrics`)).text();

  it('counts what happened by topic and outcome, and reports what waits and how far behind the relay is', async () => {
    await app.get(Orders).pay(randomUUID());
    await app.get(Orders).pay(randomUUID());
    const doomed = (await app.get(TransactionalMessageProducer).sendMessageInTransaction({ topic, key: 'doomed', body: {} }, () => TransactionStatus.COMMIT)).messageId;
    refused.add(doomed);
    await app.get(TransactionalMessageProducer).sendHalfMessage({ topic, key: 'half', body: {} });

    let text = await scrape();
    expect(value(text, 'transactional_message_messages_waiting', { status: 'COMMITTED', producer_group: 'metrics' })).toBe(3);
    expect(value(text, 'transactional_message_messages_waiting', { status: 'HALF' })).toBe(1);

    expect(await app.get(TransactionalMessageRelay).drain()).toBe(2);
    // The gauges read the table at most once a second: scrape until they show the drain.
    await eventually('the gauges read the table again', async () => {
      text = await scrape();
      return value(text, 'transactional_message_messages_waiting', { status: 'COMMITTED' }) === 0;
    });
    // The explicit API stores a half message, then ends it.
    expect(value(text, 'transactional_message_messages_stored_total', { topic, status: 'COMMITTED' })).toBe(2);
    expect(value(text, 'transactional_message_messages_stored_total', { topic, status: 'HALF' })).toBe(2);
    expect(value(text, 'transactional_message_messages_ended_total', { outcome: 'COMMIT' })).toBe(1);
    expect(value(text, 'transactional_message_messages_published_total', { topic })).toBe(2);
    expect(value(text, 'transactional_message_messages_failed_total', { topic, dead: 'true' })).toBe(1);
    expect(value(text, 'transactional_message_messages_waiting', { status: 'DEAD' })).toBe(1);
    expect(value(text, 'transactional_message_messages_waiting', { status: 'COMMITTED' })).toBe(0);
    expect(text).toMatch(/^transactional_message_relay_lag(_milliseconds)?\{[^}]*producer_group="metrics"[^}]*\} 0$/m);
    expect(text).toMatch(/^transactional_message_publish_duration(_milliseconds)?_count\{[^}]*\} [12]$/m);
  });
});

describe('metrics of two registrations in one application: each counts its own', () => {
  const topic = uniqueTopic('metrics-two');
  const exporter = new PrometheusExporter({ preventServerStart: true });
  let shop: TestDatabase;
  let archive: TestDatabase;
  let app: INestApplication;

  @Injectable()
  class Both {
    @TransactionalMessage<[string]>({ topic, key: ([id]) => id, body: ([id]) => ({ id }) })
    async shop(id: string): Promise<void> {
      void id;
    }

    @TransactionalMessage<[string]>({ instance: 'archive', topic, key: ([id]) => id, body: ([id]) => ({ id }) })
    async archive(id: string): Promise<void> {
      void id;
    }
  }

  beforeAll(async () => {
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
    [shop, archive] = await Promise.all([createTestDatabase('postgres', { inbox: true }), createTestDatabase('sqlite', { inbox: true })]);
    const registration = (db: TestDatabase, producerGroup: string) => ({
      dataSource: db.dataSource,
      producerGroup,
      publisher: new ControlledPublisher(),
      relay: { autoStart: false },
      inbox: { enabled: true },
    });
    app = await startMetricsApp(
      exporter,
      [
        TransactionalMessageModule.forRoot(registration(shop, 'metrics-shop')),
        TransactionalMessageModule.forRoot({ name: 'archive', ...registration(archive, 'metrics-archive') }),
      ],
      [Both],
    );
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all([shop?.drop(), archive?.drop()]);
    await exporter.shutdown();
    metrics.disable();
  });

  it('a message of each, and one record through the archive inbox, each counted once under its own registration', async () => {
    const both = app.get(Both);
    await both.shop(randomUUID());
    await both.archive(randomUUID());
    await both.archive(randomUUID());
    const archiveInbox = app.get<TransactionalInbox>(getTransactionalInboxToken('archive'));
    expect(await archiveInbox.process('mirror', randomUUID(), async () => 'done')).toEqual({ duplicate: false, result: 'done' });
    expect(await app.get(getTransactionalMessageRelayToken('archive')).drain()).toBe(2);

    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const text = await (await fetch(`${url}/metrics`)).text();
    const stored = (instance: string, group: string) =>
      value(text, 'transactional_message_messages_stored_total', { instance_name: instance, producer_group: group, topic, status: 'COMMITTED' });
    expect(stored('default', 'metrics-shop')).toBe(1);
    expect(stored('archive', 'metrics-archive')).toBe(2);
    // Neither registration counts the other's messages under its own name.
    expect(stored('default', 'metrics-archive')).toBeUndefined();
    expect(stored('archive', 'metrics-shop')).toBeUndefined();
    expect(value(text, 'transactional_message_messages_published_total', { instance_name: 'archive', topic })).toBe(2);
    expect(value(text, 'transactional_message_messages_published_total', { instance_name: 'default', topic })).toBeUndefined();
    // The inbox's record, once: a consumer's event was counted by every registration before.
    const inboxLines = text.split('\n').filter((l) => l.startsWith('transactional_message_inbox_processed_total{') && l.includes('consumer="mirror"'));
    expect(inboxLines).toHaveLength(1);
    expect(inboxLines[0]).toContain('instance_name="archive"');
    expect(Number(inboxLines[0]!.slice(inboxLines[0]!.lastIndexOf(' ') + 1))).toBe(1);
  });
});
