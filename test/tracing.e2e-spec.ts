import 'reflect-metadata';
import { Controller, Injectable, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { context, propagation, trace, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { randomUUID } from 'node:crypto';
import {
  Inbox,
  transactionalMessageInboxMigrations,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageRelay,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_BROKERS, listenKafkaMicroservice, uniqueTopic } from './support/kafka.js';

// OpenTelemetry as an application sets it up: a tracer provider (spans kept in memory here), the
// AsyncLocalStorage context manager, W3C propagation, and the kafkajs instrumentation enabled.
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const instrumentation = new KafkaJsInstrumentation();
instrumentation.setTracerProvider(provider);
// Jest loads modules itself, so the instrumentation's require hook cannot see kafkajs: patch the
// very module instance the library and @nestjs/microservices use, as the hook would.
const kafkajsModule = (await import('kafkajs')) as unknown as { default?: object };
for (const definition of ([] as Array<{ patch?: (exports: object, version?: string) => unknown }>).concat(
  (instrumentation as unknown as { getModuleDefinitions(): Array<{ patch?: (exports: object, version?: string) => unknown }> }).getModuleDefinitions(),
)) {
  definition.patch?.(kafkajsModule.default ?? kafkajsModule, '2.2.4');
}

describe('tracing: one trace from the producing request through the relay to the consumer (PostgreSQL, real Kafka, instrumentation-kafkajs on)', () => {
  const topic = uniqueTopic('tracing');
  let db: TestDatabase;
  let app: INestApplication;
  let microservice: INestMicroservice;
  const handled: Array<{ orderId: string; traceId: string | undefined }> = [];

  @Injectable()
  class Orders {
    @TransactionalMessage<[string]>({ topic, key: ([id]) => id, body: ([id]) => ({ id }) })
    async pay(id: string): Promise<void> {
      void id;
    }
  }

  @Controller()
  class Logistics {
    @EventPattern<string>(topic)
    @Inbox({ consumer: 'logistics' })
    async onPaid(@Payload() body: { id: string }): Promise<void> {
      handled.push({ orderId: body.id, traceId: trace.getActiveSpan()?.spanContext().traceId });
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    const runner = db.dataSource.createQueryRunner();
    for (const Migration of transactionalMessageInboxMigrations()) await new Migration().up(runner);
    await runner.release();
    await createTopics([topic]);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'tracing',
          // kafkajs, whatever the default client: the test runs with @opentelemetry/instrumentation-kafkajs on.
          kafka: { client: 'kafkajs', brokers: KAFKA_BROKERS },
          relay: { autoStart: false },
          inbox: { enabled: true },
        }),
      ],
      providers: [Orders],
      controllers: [Logistics],
    }).compile();
    moduleRef.useLogger(false);
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    microservice = await listenKafkaMicroservice(moduleRef, 'tm-test-tracing');
  });

  afterAll(async () => {
    await microservice?.close();
    await app?.close();
    await db?.drop();
    await provider.shutdown();
  });

  const spans = () => exporter.getFinishedSpans();
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

  it('the request, the relay’s publish and the consumer’s effect are one trace, with kafkajs instrumented', async () => {
    const orderId = randomUUID();
    // The producing request: a server span around the decorated call.
    const request = trace.getTracer('test').startSpan('POST /orders/:id/pay', { kind: SpanKind.SERVER });
    await context.with(trace.setSpan(context.active(), request), () => app.get(Orders).pay(orderId));
    request.end();
    const traceId = request.spanContext().traceId;

    // The relay publishes later, outside the request (here: on demand).
    expect(await app.get(TransactionalMessageRelay).drain()).toBe(1);
    await eventually('the consumer handled it', () => handled.some((h) => h.orderId === orderId), 30_000);
    await eventually('the consumer span ended', () => spans().some((s) => s.name === `process ${topic}`));

    // The consumer's effect ran in the request's trace.
    expect(handled.find((h) => h.orderId === orderId)?.traceId).toBe(traceId);
    const publish = spans().find((s) => s.name === `publish ${topic}` && s.attributes['messaging.kafka.message.key'] === orderId)!;
    const processing = spans().find((s) => s.name === `process ${topic}` && s.spanContext().traceId === traceId)!;
    expect(publish.spanContext().traceId).toBe(traceId);
    expect(parentOf(publish)).toBe(request.spanContext().spanId);
    expect(parentOf(processing)).toBe(publish.spanContext().spanId);
    // The kafkajs instrumentation was really on: it made its own send span (and set its own traceparent).
    expect(spans().some((s) => s.name === `send ${topic}`)).toBe(true);
  });
});
