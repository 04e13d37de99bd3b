import 'reflect-metadata';
import { Controller, Injectable, type INestMicroservice } from '@nestjs/common';
import { ClientProxyFactory, ClientsModule, EventPattern, Payload, Transport, type ClientProxy, type MicroserviceOptions } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import {
  ClientProxyPublisher,
  currentHalfMessage,
  Inbox,
  TransactionalMessageConfigurationError,
  MessageInfo,
  MessageStatus,
  TagFilter,
  TransactionalMessage,
  TransactionalMessageProducer,
  TransactionalMessageModule,
  TransactionStatus,
  type ClientProxyTransport,
  type ConsumedMessage,
} from '../src/index.js';
import { createTestDatabase, messageRows, type TestDatabase } from './support/databases.js';
import { eventually, uniqueTopic } from './support/kafka.js';
import { FAST_RELAY } from './support/relay.fixture.js';
import { TRANSPORT_URLS } from './support/transports.js';

/** One transport under test: how the library's client and the consumers' server reach it. */
interface TransportCase {
  name: ClientProxyTransport;
  client: (queue: string) => object;
  server: (queue: string) => MicroserviceOptions;
}

const CASES: TransportCase[] = [
  {
    name: 'rmq',
    client: (queue) => ({ transport: Transport.RMQ, options: { urls: [TRANSPORT_URLS.rabbitmq], queue, queueOptions: { durable: false, autoDelete: true } } }),
    server: (queue) => ({ transport: Transport.RMQ, options: { urls: [TRANSPORT_URLS.rabbitmq], queue, queueOptions: { durable: false, autoDelete: true } } }),
  },
  {
    name: 'nats',
    client: () => ({ transport: Transport.NATS, options: { servers: [TRANSPORT_URLS.nats] } }),
    server: () => ({ transport: Transport.NATS, options: { servers: [TRANSPORT_URLS.nats] } }),
  },
  {
    name: 'mqtt',
    client: () => ({ transport: Transport.MQTT, options: { url: TRANSPORT_URLS.mqtt, protocolVersion: 5 } }),
    server: () => ({ transport: Transport.MQTT, options: { url: TRANSPORT_URLS.mqtt, protocolVersion: 5, subscribeOptions: { qos: 1 } } }),
  },
  {
    name: 'redis',
    client: () => ({ transport: Transport.REDIS, options: redisOptions() }),
    server: () => ({ transport: Transport.REDIS, options: redisOptions() }),
  },
];

function redisOptions(): { host: string; port: number } {
  const url = new URL(TRANSPORT_URLS.redis);
  return { host: url.hostname, port: Number(url.port || 6379) };
}

describe.each(CASES)('ClientProxyPublisher over $name (real server)', ({ name, client, server }) => {
  const topic = { paid: uniqueTopic(`${name}.order-paid`), refunded: uniqueTopic(`${name}.order-refunded`) };
  const queue = `tm-test-${name}-${randomUUID()}`;
  let db: TestDatabase;
  let app: INestMicroservice | undefined;
  const received: Array<{ topic: string; info: ConsumedMessage; body: unknown }> = [];
  const inboxed: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('postgres', { inbox: true });
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await db?.drop();
  });

  /** Redis carries no headers: the data is the envelope `{ headers, body }`. */
  const bodyOf = (data: unknown) => (name === 'redis' ? (data as { body: unknown }).body : data);

  @Controller()
  class Consumers {
    @EventPattern<string>(topic.paid)
    onPaid(@Payload() data: unknown, @MessageInfo() info: ConsumedMessage): void {
      received.push({ topic: topic.paid, info, body: bodyOf(data) });
    }

    /** Tag filtering and the inbox work on the transport's headers too. */
    @EventPattern<string>(topic.paid)
    @Inbox({ consumer: `${name}-vip`, tags: 'vip' })
    onVip(@MessageInfo() info: ConsumedMessage): void {
      inboxed.push(info.id!);
    }

    @EventPattern<string>(topic.refunded)
    @TagFilter('refunded')
    onRefunded(@Payload() data: unknown, @MessageInfo() info: ConsumedMessage): void {
      received.push({ topic: topic.refunded, info, body: bodyOf(data) });
    }
  }

  @Injectable()
  class Orders {
    @TransactionalMessage<[string, number, string[]]>({ topic: topic.paid, key: ([orderId]) => orderId, tags: ([, , tags]) => tags, body: ([orderId, n]) => ({ orderId, n }), properties: { source: 'shop' } })
    async pay(orderId: string, n: number, tags: string[]): Promise<void> {
      if (tags.includes('declined')) currentHalfMessage().rollback();
    }
  }

  async function start(): Promise<INestMicroservice> {
    const events = ClientsModule.register([{ name: 'EVENTS', ...client(queue) } as never]);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRootAsync({
          imports: [events],
          inject: ['EVENTS'],
          useFactory: (proxy: ClientProxy) => ({
            dataSource: db.dataSource,
            producerGroup: 'shop',
            publisher: new ClientProxyPublisher(proxy),
            relay: FAST_RELAY,
            inbox: { enabled: true },
          }),
        }),
      ],
      controllers: [Consumers],
      providers: [Orders],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    const microservice = moduleRef.createNestMicroservice<MicroserviceOptions>(server(queue));
    await microservice.listen();
    app = microservice;
    return microservice;
  }

  it('delivers committed messages with their id, key, tags and properties as headers, each key in write order; never a rolled-back one', async () => {
    const service = (await start()).get(Orders);
    // The subscription is up before the first message: NATS, MQTT and Redis keep nothing for absent subscribers.
    const keys = [randomUUID(), randomUUID()];
    for (let n = 1; n <= 10; n++) for (const key of keys) await service.pay(key, n, n === 3 ? ['paid', 'vip'] : ['paid']);
    await service.pay(keys[0], 99, ['declined']);
    await eventually(`20 messages over ${name}`, () => received.filter((r) => r.topic === topic.paid).length >= 20);
    await eventually('marked delivered', async () => (await messageRows(db)).filter((r) => r.status === MessageStatus.DELIVERED).length >= 20);

    const rows = await messageRows(db);
    for (const key of keys) {
      const got = received.filter((r) => r.info.key === key);
      expect(got.map((r) => (r.body as { n: number }).n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(got.map((r) => r.info.id)).toEqual(rows.filter((r) => r.message_key === key && r.status === MessageStatus.DELIVERED).map((r) => r.id));
      expect(got[0].info).toMatchObject({ producerGroup: 'shop', key, tags: ['paid'], properties: { source: 'shop' }, contentType: 'application/json' });
      expect(got[2].info.tags).toEqual(['paid', 'vip']);
    }
    expect(received.some((r) => (r.body as { n: number }).n === 99)).toBe(false);
    expect(rows.find((r) => r.message_key === keys[0] && r.status === MessageStatus.ROLLED_BACK)).toBeDefined();
    // The inbox took the two vip messages once each, by their ids.
    await eventually('the inbox', () => inboxed.length >= 2);
    expect(inboxed.sort()).toEqual(received.filter((r) => r.info.tags.includes('vip')).map((r) => r.info.id).sort());
  });

  it('tag filtering skips what its expression does not match', async () => {
    const producer = (await start()).get(TransactionalMessageProducer);
    const key = randomUUID();
    await producer.sendMessageInTransaction({ topic: topic.refunded, key, tags: 'cancelled', body: { skip: true } }, () => TransactionStatus.COMMIT);
    await producer.sendMessageInTransaction({ topic: topic.refunded, key, tags: 'refunded', body: { skip: false } }, () => TransactionStatus.COMMIT);
    await eventually('the refunded one', () => received.some((r) => r.topic === topic.refunded && r.info.key === key));
    await eventually('both marked delivered', async () => (await messageRows(db)).filter((r) => r.message_key === key && r.status === MessageStatus.DELIVERED).length === 2);
    expect(received.filter((r) => r.topic === topic.refunded && r.info.key === key).map((r) => r.body)).toEqual([{ skip: false }]);
  });
});

describe('ClientProxyPublisher: errors', () => {
  it('classifies refused credentials as configuration (RabbitMQ, real server) and an unreachable server as transport', async () => {
    const wrong = new URL(TRANSPORT_URLS.rabbitmq);
    wrong.password = 'not-the-password';
    const refused = new ClientProxyPublisher(ClientProxyFactory.create(<never>{ transport: Transport.RMQ, options: { urls: [wrong.toString()], queue: 'tm-test-refused' } }) as unknown as ClientProxy, { timeoutMs: 5_000 });
    const error = await refused.connect().then(() => undefined, (e: unknown) => e);
    expect(error).toBeDefined();
    expect(refused.classify(error)).toEqual({ kind: 'config' });
    await refused.close().catch(() => undefined);

    // A port with nothing behind it: refused at once (or the client waits for a reconnection: the timeout).
    const nowhere = new ClientProxyPublisher(ClientProxyFactory.create(<never>{ transport: Transport.NATS, options: { servers: ['nats://127.0.0.1:1'], maxReconnectAttempts: 0 } }) as unknown as ClientProxy, { timeoutMs: 2_000 });
    const unreachable = await nowhere.connect().then(() => undefined, (e: unknown) => e);
    expect(nowhere.classify(unreachable)).toEqual({ kind: 'transport' });
    await nowhere.close().catch(() => undefined);
  });

  it('refuses a message over the server limit as the message\'s fault (NATS max_payload, real server)', async () => {
    const publisher = new ClientProxyPublisher(ClientProxyFactory.create(<never>{ transport: Transport.NATS, options: { servers: [TRANSPORT_URLS.nats] } }) as unknown as ClientProxy);
    await publisher.connect();
    try {
      const huge = { id: randomUUID(), topic: 'tm-test.huge', key: null, value: Buffer.from(JSON.stringify({ x: 'x'.repeat(2 * 1024 * 1024) })), headers: { 'tm-content-type': 'application/json' }, timestamp: new Date() };
      const error = await publisher.publish([huge]).then(() => undefined, (e: unknown) => e);
      expect(error).toBeDefined();
      expect(publisher.classify(error)).toEqual({ kind: 'message', retriable: false });
    } finally {
      await publisher.close();
    }
  });

  it('refuses what it cannot carry, naming the fix', () => {
    expect(() => new ClientProxyPublisher({} as never)).toThrow(TransactionalMessageConfigurationError);
    const tcp = ClientProxyFactory.create(<never>{ transport: Transport.TCP }) as unknown as ClientProxy;
    expect(() => new ClientProxyPublisher(tcp)).toThrow(/one of 'rmq', 'nats', 'mqtt', 'redis'/);
    const mqtt311 = ClientProxyFactory.create(<never>{ transport: Transport.MQTT, options: { url: TRANSPORT_URLS.mqtt } }) as unknown as ClientProxy;
    expect(() => new ClientProxyPublisher(mqtt311)).toThrow(/protocolVersion: 5/);
    const rmq = ClientProxyFactory.create(<never>{ transport: Transport.RMQ, options: { urls: [TRANSPORT_URLS.rabbitmq], queue: 'q' } }) as unknown as ClientProxy;
    expect(() => new ClientProxyPublisher(rmq, { timeoutMs: 0 })).toThrow(/option 'timeoutMs' is 0/);
  });
});
