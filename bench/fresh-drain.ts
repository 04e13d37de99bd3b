// One measured drain in a process of its own (workload 2): the relay publishing what a database
// holds, or the same Kafka client sending the same records from memory. Both are measured the same
// way: the clock starts before the library or the client is loaded and built ("with boot"), and
// also from the start of the first publish request ("without boot"). Prints one JSON line.
//
//   node bench/dist/fresh-drain.js relay <client> <database url> <topic> <count>
//   node bench/dist/fresh-drain.js raw <client> <topic> <count>
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { KafkaClientName } from 'nestjs-transactional-message';
import { body, cpuBetween, cpuSample, KAFKA_BROKERS, waitUntil, type CpuSample, type CpuUse } from './harness.js';

/** What one run prints. */
export interface DrainRun {
  /** Messages per second from before the library (or client) was loaded to the last acknowledgement. */
  withBoot: number;
  /** Messages per second from the start of the first publish request to the last acknowledgement. */
  withoutBoot: number;
  /** Milliseconds from the start of the clock to the start of the first publish request. */
  firstPublishMs: number;
  /** The relay only: the share of the time from its first publish to the last acknowledgement spent inside publish requests. */
  publishShare?: number;
  /** From the first acknowledgement to the last (Linux; else absent): see CpuUse. */
  cpu?: CpuUse;
}

const BATCH = 500;
const [mode, client, ...rest] = process.argv.slice(2) as [string, KafkaClientName, ...string[]];

function result(count: number, started: number, firstPublish: number, ended: number): DrainRun {
  return {
    withBoot: count / ((ended - started) / 1000),
    withoutBoot: count / ((ended - firstPublish) / 1000),
    firstPublishMs: firstPublish - started,
  };
}

async function relay(url: string, topic: string, count: number): Promise<DrainRun> {
  // The application's DataSource exists before the library boots.
  const dataSource = await new DataSource({ type: 'postgres', url, extra: { max: 20 } }).initialize();
  const started = performance.now();
  const { onTransactionalMessageEvent } = await import('nestjs-transactional-message');
  let firstPublish: number | undefined;
  let published = 0;
  let ended = 0;
  let inPublish = 0;
  let firstAck: CpuSample | undefined;
  let lastAck: CpuSample | undefined;
  let afterFirst = 0;
  const off = onTransactionalMessageEvent('batch.published', (event) => {
    const now = performance.now();
    firstPublish ??= now - event.durationMs;
    inPublish += event.durationMs;
    published += event.count;
    if (firstAck) afterFirst += event.count;
    firstAck ??= cpuSample();
    if (published >= count && ended === 0) {
      ended = now;
      lastAck = cpuSample();
    }
  });
  const { benchApp } = await import('./app.js');
  const app = await benchApp(dataSource, {
    relay: { batchSize: BATCH, pollIntervalMs: 50 },
    kafka: { client, brokers: KAFKA_BROKERS, clientId: 'tm-bench-relay' },
  });
  try {
    await waitUntil('all published', () => ended > 0, 600_000, 5);
    await waitUntil('all marked', async () => {
      const [{ left }] = await dataSource.query(`SELECT count(*)::int AS left FROM transactional_message WHERE status = 'COMMITTED'`);
      return left === 0;
    }, 60_000);
    return { ...result(count, started, firstPublish!, ended), publishShare: inPublish / (ended - firstPublish!), cpu: cpuBetween(firstAck, lastAck, afterFirst) };
  } finally {
    off();
    await app.close();
    await dataSource.destroy();
  }
}

function rawRecords(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    key: `key-${i % 1_000}`,
    value: Buffer.from(JSON.stringify(body(i))),
    headers: { 'tm-message-id': randomUUID(), 'tm-producer-group': 'bench', 'tm-content-type': 'application/json', 'tm-key': `key-${i % 1_000}` },
  }));
}

/** kafkajs with the relay's producer settings (idempotent, acks all, one request in flight, the Java partitioner). */
async function rawKafkajs(topic: string, count: number): Promise<DrainRun> {
  const records = rawRecords(count).map((r) => ({ ...r, timestamp: String(Date.now()) }));
  const started = performance.now();
  const { Kafka, Partitioners, logLevel } = await import('kafkajs');
  const producer = new Kafka({ brokers: KAFKA_BROKERS, clientId: 'tm-bench-raw', logLevel: logLevel.NOTHING }).producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
  await producer.connect();
  try {
    const firstPublish = performance.now();
    let firstAck: CpuSample | undefined;
    for (let i = 0; i < records.length; i += BATCH) {
      await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages: records.slice(i, i + BATCH) }] });
      firstAck ??= cpuSample();
    }
    return { ...result(count, started, firstPublish, performance.now()), cpu: cpuBetween(firstAck, cpuSample(), records.length - BATCH) };
  } finally {
    await producer.disconnect();
  }
}

/** @platformatic/kafka with the relay's producer settings. */
async function rawPlatformatic(topic: string, count: number): Promise<DrainRun> {
  const records = rawRecords(count).map((r) => ({ topic, key: Buffer.from(r.key), value: r.value, headers: r.headers, timestamp: BigInt(Date.now()) }));
  const started = performance.now();
  const { Producer, ProduceAcks, compatibilityPartitioner } = await import('@platformatic/kafka');
  const producer = new Producer<Buffer, Buffer, string, string>({
    clientId: 'tm-bench-raw',
    bootstrapBrokers: KAFKA_BROKERS,
    idempotent: true,
    acks: ProduceAcks.ALL,
    maxInflights: 1,
    partitioner: (message, key) => compatibilityPartitioner(message, key),
    serializers: {
      key: (k?: Buffer) => k,
      value: (v?: Buffer) => v,
      headerKey: (k?: string) => (k === undefined ? undefined : Buffer.from(k)),
      headerValue: (v?: string) => (v === undefined ? undefined : Buffer.from(v)),
    },
  });
  try {
    const firstPublish = performance.now();
    let firstAck: CpuSample | undefined;
    for (let i = 0; i < records.length; i += BATCH) {
      await producer.send({ messages: records.slice(i, i + BATCH) });
      firstAck ??= cpuSample();
    }
    return { ...result(count, started, firstPublish, performance.now()), cpu: cpuBetween(firstAck, cpuSample(), records.length - BATCH) };
  } finally {
    await producer.close();
  }
}

const run =
  mode === 'relay'
    ? relay(rest[0]!, rest[1]!, Number(rest[2]))
    : client === 'kafkajs'
      ? rawKafkajs(rest[0]!, Number(rest[1]))
      : rawPlatformatic(rest[0]!, Number(rest[1]));
run.then(
  (measured) => {
    console.log(`TM_BENCH_DRAIN ${JSON.stringify(measured)}`);
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
