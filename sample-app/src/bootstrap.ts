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

export interface ShopOptions {
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
  url: string;
  timeline: Timeline;
  close(): Promise<void>;
}

/** Starts the shop: the HTTP API and the Kafka consumers, in one application. */
export async function startShop(options: ShopOptions = {}): Promise<Shop> {
  const kafkaBrokers = options.kafkaBrokers ?? (process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`).split(',');
  const groupId = options.groupId ?? 'shop';
  await prepareKafka(kafkaBrokers, ORDER_PAID, groupId);
  prometheusExporter(); // before the application: OpenTelemetry's meter provider must exist first
  const app = await NestFactory.create(
    AppModule.forRoot({ database: options.database ?? databaseOptions(), kafkaBrokers, fast: options.fast ?? false }),
    { logger: options.logger ?? ['log', 'warn', 'error'] },
  );
  app.connectMicroservice<MicroserviceOptions>({
    transport: Transport.KAFKA,
    options: {
      client: { brokers: kafkaBrokers, clientId: 'shop-consumers' },
      consumer: { groupId, retry: { retries: 10, initialRetryTime: 100 } },
      producer: { createPartitioner: Partitioners.DefaultPartitioner },
      subscribe: { fromBeginning: true },
    },
  });
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(options.port ?? Number(process.env.PORT ?? 3000), '127.0.0.1');
  return { app, url: (await app.getUrl()).replace('[::1]', '127.0.0.1'), timeline: app.get(Timeline), close: () => app.close() };
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
