import { randomBytes } from 'node:crypto';
import type { INestMicroservice } from '@nestjs/common';
import { Transport, type KafkaOptions } from '@nestjs/microservices';
import type { TestingModule } from '@nestjs/testing';
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import { DEFAULT_KAFKA_CLIENT, type KafkaClientName } from '../../src/index.js';

/** The broker the tests publish to; override with KAFKA_BROKERS (comma-separated). */
/** The shared broker: KAFKA_BROKERS, else 127.0.0.1:KAFKA_PORT (9092), as scripts/services.sh starts it. */
export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`).split(',');

/**
 * The Kafka client the library's publisher runs on in these tests: TM_KAFKA_CLIENT
 * ('kafkajs' or '@platformatic/kafka'), else the library's default. Spread into KafkaOptions.
 */
export const KAFKA_CLIENT: { client: KafkaClientName } = { client: (process.env.TM_KAFKA_CLIENT as KafkaClientName | undefined) ?? DEFAULT_KAFKA_CLIENT };

export function testKafka(brokers: string[] = KAFKA_BROKERS): Kafka {
  return new Kafka({ brokers, clientId: 'tm-test', logLevel: logLevel.NOTHING });
}

/** A topic name of its own for one test. */
export function uniqueTopic(name: string): string {
  return `tm-test.${name}.${randomBytes(4).toString('hex')}`;
}

/**
 * Creates the topics and waits for their leaders. A broker that has just started with many
 * partitions on disk can answer UNKNOWN_TOPIC_OR_PARTITION for a while (kafkajs does not retry
 * that while waiting for leaders), so the whole step is retried for up to a minute.
 */
export async function createTopics(
  topics: string[],
  partitions = 3,
  brokers: string[] = KAFKA_BROKERS,
  configEntries: { name: string; value: string }[] = [],
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const admin = testKafka(brokers).admin();
    try {
      await admin.connect();
      await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: partitions, configEntries })), waitForLeaders: true });
      const metadata = await admin.fetchTopicMetadata({ topics });
      if (metadata.topics.every((t) => t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leaders after a minute`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** One record as a consumer saw it. */
export interface Received {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  json: unknown;
  headers: Record<string, string>;
}

/**
 * A kafkajs consumer reading the topics from the beginning, recording every record of the topics
 * (duplicates included: two records of one message) in arrival order. A record read again (same
 * topic, partition and offset: the group rebalanced before its offset was committed, which a loaded
 * machine can cause) is one record of the topic, recorded once and counted in `rereads`.
 */
export class TestConsumer {
  readonly received: Received[] = [];
  /** Records read a second time (same offset), not recorded again. */
  rereads = 0;
  private readonly seen = new Set<string>();
  private consumer: Consumer | undefined;

  constructor(
    private readonly topics: string[],
    private readonly brokers: string[] = KAFKA_BROKERS,
  ) {}

  async start(): Promise<this> {
    const consumer = testKafka(this.brokers).consumer({
      groupId: `tm-test-${randomBytes(6).toString('hex')}`,
      sessionTimeout: 10_000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 100,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: this.topics, fromBeginning: true });
    let joined!: () => void;
    const ready = new Promise<void>((resolve) => (joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, () => joined());
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const at = `${topic}:${partition}:${message.offset}`;
        if (this.seen.has(at)) {
          this.rereads++;
          return;
        }
        this.seen.add(at);
        const value = message.value ?? Buffer.alloc(0);
        let json: unknown;
        try {
          json = JSON.parse(value.toString('utf8'));
        } catch {
          json = undefined;
        }
        this.received.push({ topic, partition, offset: message.offset, key: message.key?.toString() ?? null, value, json, headers: decodeHeaders(message.headers) });
      },
    });
    await ready;
    return this;
  }

  of(topic: string): Received[] {
    return this.received.filter((r) => r.topic === topic);
  }

  /** Waits until `predicate` holds over what was received, or fails after `timeoutMs` with `what`. */
  async waitFor(what: string, predicate: (received: Received[]) => boolean, timeoutMs = 30_000): Promise<void> {
    await eventually(what, () => predicate(this.received), timeoutMs);
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined) result[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return result;
}

/** The waits of `eventually` under way in this test file, each by what it waits for. */
const waiting = new Set<{ what: string }>();

// A test that reaches jest's deadline inside a wait fails with "Exceeded timeout" alone, naming no
// step (two 30 s waits in a row outlast the 60 s deadline). jest runs the afterEach hooks of a test
// that timed out while its body still runs: this one names the wait it was in, and ends it.
afterEach(() => {
  if (waiting.size === 0) return;
  const steps = [...waiting].map((w) => w.what);
  waiting.clear();
  throw new Error(`The test ended while still waiting for: ${steps.join('; ')}`);
});

/** Polls `condition` until it holds; rejects naming `what` after `timeoutMs`. Not a timing assertion: a deadline for a failure message. */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const wait = { what };
  waiting.add(wait);
  try {
    for (;;) {
      if (await condition()) return;
      if (Date.now() > deadline) throw new Error(`Timed out waiting for: ${what}`);
      // Ended by the afterEach above: the test is over, stop polling what it left behind.
      if (!waiting.has(wait)) throw new Error(`Abandoned, the test having ended: ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    waiting.delete(wait);
  }
}

/**
 * A Kafka microservice of `moduleRef` (its `@EventPattern` handlers) listening from the start of
 * its topics, in a consumer group of its own; `consumer` adds options of kafkajs' consumer.
 */
export async function listenKafkaMicroservice(
  moduleRef: TestingModule,
  clientId: string,
  extra: { consumer?: Partial<NonNullable<KafkaOptions['options']>['consumer']>; run?: NonNullable<KafkaOptions['options']>['run'] } = {},
): Promise<INestMicroservice> {
  const microservice = moduleRef.createNestMicroservice<KafkaOptions>({
    transport: Transport.KAFKA,
    options: {
      client: { brokers: KAFKA_BROKERS, clientId },
      consumer: { groupId: `tm-test-${randomBytes(4).toString('hex')}`, ...extra.consumer },
      subscribe: { fromBeginning: true },
      ...(extra.run ? { run: extra.run } : {}),
    },
  });
  microservice.useLogger(false);
  await microservice.listen();
  return microservice;
}
