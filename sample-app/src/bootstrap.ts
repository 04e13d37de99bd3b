import 'reflect-metadata';
import type { INestApplication, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { DataSourceOptions } from 'typeorm';
import { AppModule } from './app.module.js';
import { databaseOptions } from './database.js';
import { ORDER_PAID } from './events.js';
import { prometheusExporter } from './operations/metrics.js';
import { Timeline } from './timeline.service.js';

/** Where the shop's messages go: Kafka (the default) or RabbitMQ (SHOP_TRANSPORT=rabbitmq). */
export type ShopTransport = 'kafka' | 'rabbitmq';

/** The transport SHOP_TRANSPORT names (default kafka); anything else is refused, naming the choices. */
export function shopTransport(env: NodeJS.ProcessEnv = process.env): ShopTransport {
  const value = env.SHOP_TRANSPORT ?? 'kafka';
  if (value !== 'kafka' && value !== 'rabbitmq') throw new Error(`SHOP_TRANSPORT=${JSON.stringify(value)}: use kafka (the default) or rabbitmq`);
  return value;
}

export interface ShopOptions {
  /** Default SHOP_TRANSPORT, else kafka. */
  transport?: ShopTransport;
  /** RabbitMQ's URL. Default RABBITMQ_URL, else amqp://guest:guest@127.0.0.1:RABBITMQ_PORT (5672). */
  rabbitmqUrl?: string;
  /** The RabbitMQ queue of the logistics, credit and cart consumers. Default SHOP_QUEUE, else 'shop.events'. */
  queue?: string;
  /** HTTP port on 127.0.0.1; 0 picks a free one. Default PORT or 3000. */
  port?: number;
  database?: DataSourceOptions;
  /** Default KAFKA_BROKERS, else 127.0.0.1:KAFKA_PORT (9092). */
  kafkaBrokers?: string[];
  /** Kafka consumer group of the logistics, credit and cart consumers. Default 'shop'. */
  groupId?: string;
  fast?: boolean;
  logger?: false | LogLevel[];
}

export interface Shop {
  app: INestApplication;
  transport: ShopTransport;
  url: string;
  timeline: Timeline;
  close(): Promise<void>;
}

/** Starts the shop: the HTTP API and the consumers (Kafka or RabbitMQ), in one application. */
export async function startShop(options: ShopOptions = {}): Promise<Shop> {
  const transport = options.transport ?? shopTransport();
  const kafkaBrokers = options.kafkaBrokers ?? (process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`).split(',');
  const rabbitmq = {
    url: options.rabbitmqUrl ?? process.env.RABBITMQ_URL ?? `amqp://guest:guest@127.0.0.1:${process.env.RABBITMQ_PORT ?? 5672}`,
    queue: options.queue ?? process.env.SHOP_QUEUE ?? 'shop.events',
  };
  const groupId = options.groupId ?? 'shop';
  if (transport === 'kafka') await prepareKafka(kafkaBrokers, ORDER_PAID, groupId);
  prometheusExporter(); // before the application: OpenTelemetry's meter provider must exist first
  const app = await NestFactory.create(
    AppModule.forRoot({ database: options.database ?? databaseOptions(), transport, kafkaBrokers, rabbitmq, fast: options.fast ?? false }),
    { logger: options.logger ?? ['log', 'warn', 'error'] },
  );
  app.connectMicroservice<MicroserviceOptions>(
    transport === 'kafka'
      ? {
          transport: Transport.KAFKA,
          options: {
            client: { brokers: kafkaBrokers, clientId: 'shop-consumers' },
            consumer: { groupId, retry: { retries: 10, initialRetryTime: 100 } },
            producer: { createPartitioner: Partitioners.DefaultPartitioner },
            subscribe: { fromBeginning: true },
          },
        }
      : // One durable queue; the consumers acknowledge each message once handled (a crash redelivers it; the inbox removes the copy).
        { transport: Transport.RMQ, options: { urls: [rabbitmq.url], queue: rabbitmq.queue, queueOptions: { durable: true }, noAck: false } },
  );
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(options.port ?? Number(process.env.PORT ?? 3000), '127.0.0.1');
  return { app, transport, url: (await app.getUrl()).replace('[::1]', '127.0.0.1'), timeline: app.get(Timeline), close: () => app.close() };
}

/**
 * Creates the topic (3 partitions) if it does not exist, and waits until the broker's group
 * coordinator answers (a freshly started broker loads it lazily), so the consumers start quietly.
 */
async function prepareKafka(brokers: string[], topic: string, groupId: string): Promise<void> {
  // A broker that has just started can answer UNKNOWN_TOPIC_OR_PARTITION for a while: retry.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const admin = new Kafka({ brokers, clientId: 'shop-admin', logLevel: logLevel.NOTHING, retry: { retries: 20 } }).admin();
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
      await admin.describeGroups([groupId]);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
