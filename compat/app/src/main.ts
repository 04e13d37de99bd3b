// One cell of the compatibility matrix (scripts/compat.mjs): an application as a user writes it,
// built as CommonJS or ESM against one NestJS / TypeORM pair, that boots the module, calls a
// decorated method, and waits for the record on Kafka. Prints one JSON line; exit code 0 = pass.
import 'reflect-metadata';
import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import {
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionContext,
  transactionalMessageMigrations,
  type MessagePublisher,
  type OutgoingMessage,
} from 'nestjs-transactional-message';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`compat app: ${name} is not set`);
  return value;
};
const topic = env('COMPAT_TOPIC');
const orderId = env('COMPAT_ORDER');
/** 'kafka': the built-in Kafka publisher; 'custom': a publisher of its own (no Kafka client installed). */
const publisherKind = process.env.COMPAT_PUBLISHER ?? 'kafka';
/** The built-in publisher's client: COMPAT_KAFKA_CLIENT, else the library's default. */
const publisherClient = process.env.COMPAT_KAFKA_CLIENT as 'kafkajs' | '@platformatic/kafka' | undefined;

@Injectable()
class OrderService {
  constructor(private readonly tx: TransactionContext) {}

  @TransactionalMessage<[string]>({ topic, key: ([id]) => id, body: ([id]) => ({ orderId: id }) })
  async pay(id: string): Promise<void> {
    await this.tx.manager.query('INSERT INTO compat_order (id) VALUES ($1)', [id]);
  }
}

/** Publishes nowhere but records what it was given (the custom-publisher cell). */
class RecordingPublisher implements MessagePublisher {
  readonly sent: OutgoingMessage[] = [];
  async connect(): Promise<void> {}
  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    this.sent.push(...messages);
  }
  classify() {
    return { kind: 'unknown' as const };
  }
  async close(): Promise<void> {}
}

@Module({})
class AppModule {
  static forRoot(dataSource: DataSource, publisher: RecordingPublisher | undefined): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource,
          producerGroup: 'compat',
          ...(publisher ? { publisher } : { kafka: { ...(publisherClient ? { client: publisherClient } : {}), brokers: env('KAFKA_BROKERS').split(',') } }),
          relay: { pollIntervalMs: 50 },
        }),
      ],
      providers: [OrderService],
    };
  }
}

/**
 * kafkajs for the app's own topic admin and consumer, loaded by name without its types: the cell with
 * no Kafka client installed compiles this file too (it never calls it).
 */
type KafkaJs = { Kafka: new (config: object) => any; logLevel: { NOTHING: number } };
async function kafkaClient(): Promise<any> {
  const name = 'kafkajs';
  const { Kafka, logLevel } = (await import(name)) as KafkaJs;
  return new Kafka({ brokers: env('KAFKA_BROKERS').split(','), clientId: 'compat', logLevel: logLevel.NOTHING });
}

/** The check's own topic, created up front (the relay would create it on its first publish). */
async function createTopic(): Promise<void> {
  const admin = (await kafkaClient()).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

async function waitForRecord(): Promise<void> {
  const kafka = await kafkaClient();
  const consumer = kafka.consumer({ groupId: `compat-${orderId}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no record of ${orderId} on ${topic} within 60 s`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }: { message: { key: Buffer | null } }) => {
          if (message.key?.toString() === orderId) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
}

async function main(): Promise<void> {
  const dataSource = await new DataSource({
    type: 'postgres',
    url: env('DATABASE_URL'),
    migrations: transactionalMessageMigrations(),
    migrationsRun: true,
  }).initialize();
  await dataSource.query('CREATE TABLE IF NOT EXISTS compat_order (id varchar(64) PRIMARY KEY)');
  if (publisherKind === 'kafka') await createTopic();
  const recording = publisherKind === 'custom' ? new RecordingPublisher() : undefined;
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(dataSource, recording), { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  try {
    await app.get(OrderService).pay(orderId);
    if (recording) {
      const deadline = Date.now() + 30_000;
      while (!recording.sent.some((m) => m.key === orderId)) {
        if (Date.now() > deadline) throw new Error('the custom publisher got nothing within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } else {
      await waitForRecord();
    }
    // One copy of the library's state, however it is loaded: require() (CommonJS) and import() give the same module.
    const imported = await import('nestjs-transactional-message');
    const sameModule = imported.TransactionalMessageModule === TransactionalMessageModule;
    if (!sameModule) throw new Error('import() and the static import gave two copies of the library');
    console.log(JSON.stringify({ ok: true, node: process.version, module: typeof require === 'function' ? 'commonjs' : 'esm', publisher: publisherKind }));
  } finally {
    await app.close();
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
