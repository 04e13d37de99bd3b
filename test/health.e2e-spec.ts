import 'reflect-metadata';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import {
  MessageStatus,
  TransactionalMessageHealthIndicator,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, FAST_RELAY, InjectedFailure } from './support/relay.fixture.js';

// docs/operations.md's health recipe with the real @nestjs/terminus, over HTTP.
describe('health: a @nestjs/terminus indicator (PostgreSQL, real Kafka)', () => {
  const topic = uniqueTopic('health');
  let db: TestDatabase;
  let app: INestApplication;
  let url: string;
  const publisher = new ControlledPublisher();
  let outage = false;
  const refused = new Set<string>();

  @Controller()
  class HealthController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly messages: TransactionalMessageHealthIndicator,
    ) {}

    @Get('health')
    @HealthCheck()
    check() {
      return this.health.check([() => this.messages.isHealthy('messages', { maxLagMs: 60_000, maxDead: 0 })]);
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    await createTopics([topic]);
    publisher.inject = (messages) =>
      outage
        ? new InjectedFailure('broker down', { kind: 'transport' })
        : messages.some((m) => refused.has(m.id))
          ? new InjectedFailure('refused', { kind: 'message', retriable: false })
          : undefined;
    @Module({
      imports: [TerminusModule, TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'health', publisher, relay: FAST_RELAY })],
      controllers: [HealthController],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const health = async () => {
    const response = await fetch(`${url}/health`);
    return { status: response.status, body: (await response.json()) as { status: string; details: { messages: { status: string; problems: string[]; downstream: string; dead: number } } } };
  };
  const send = (key: string) =>
    app.get(TransactionalMessageProducer).sendMessageInTransaction({ topic, key, body: {} }, () => TransactionStatus.COMMIT).then((r) => r.messageId);

  it('is up while the relay runs and delivers, down during an outage and with a DEAD message, and says why', async () => {
    await send('fine');
    let result = await health();
    expect(result.status).toBe(200);
    expect(result.body.details.messages).toMatchObject({ status: 'up', problems: [], downstream: 'available' });

    outage = true;
    const during = await send('during-outage');
    await eventually('the outage seen', async () => (await health()).status === 503);
    result = await health();
    expect(result.body.status).toBe('error');
    expect(result.body.details.messages.downstream).toBe('unavailable');
    expect(result.body.details.messages.problems.join('\n')).toMatch(/the downstream has been unavailable since/);

    outage = false;
    await eventually('delivered after the outage', async () => (await app.get(TransactionalMessageProducer).getMessage(during))?.status === MessageStatus.DELIVERED);
    expect((await health()).status).toBe(200);

    const dead = await send('dead');
    refused.add(dead);
    await eventually('DEAD', async () => (await app.get(TransactionalMessageProducer).getMessage(dead))?.status === MessageStatus.DEAD);
    result = await health();
    expect(result.status).toBe(503);
    expect(result.body.details.messages).toMatchObject({ status: 'down', dead: 1, problems: ['1 DEAD message(s) (maxDead 0)'] });
  });
});
