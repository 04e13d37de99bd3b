import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { transactionalMessageMigrations } from 'nestjs-transactional-message';

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`).split(',');
/** The Kafka client of the relay in the workloads that do not compare clients (TM_BENCH_CLIENT; default: the library's default). */
export const BENCH_CLIENT = process.env.TM_BENCH_CLIENT as 'kafkajs' | '@platformatic/kafka' | undefined;

export interface BenchDatabase {
  dataSource: DataSource;
  options: DataSourceOptions;
  drop(): Promise<void>;
}

/** A fresh PostgreSQL database with the library's tables and the bench's entities. */
export async function benchDatabase(entities: Function[] = []): Promise<BenchDatabase> {
  const name = `tm_bench_${randomBytes(4).toString('hex')}`;
  const admin = await new DataSource({ type: 'postgres', url: POSTGRES_URL }).initialize();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  const options: DataSourceOptions = {
    type: 'postgres',
    url: url.toString(),
    entities,
    synchronize: true,
    migrations: transactionalMessageMigrations(),
    migrationsRun: true,
    extra: { max: 20 },
  };
  const dataSource = await new DataSource(options).initialize();
  return {
    dataSource,
    options,
    async drop() {
      if (dataSource.isInitialized) await dataSource.destroy();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}

export function kafka(): Kafka {
  return new Kafka({ brokers: KAFKA_BROKERS, clientId: 'tm-bench', logLevel: logLevel.NOTHING });
}

/** Topics this process created and has not deleted yet. */
const createdTopics = new Set<string>();

/**
 * Deletes the topics this process created. The bench runs after each workload: a broker that keeps
 * every topic of a run (hundreds of partitions) collects more and longer, and the later workloads
 * would measure that (a 512 MB test broker with SerialGC, 2,000 partition directories: full
 * collections of ~220 ms, bench/RESULTS.md 2026-12-05 night).
 */
export async function deleteCreatedTopics(): Promise<void> {
  if (createdTopics.size === 0) return;
  const admin = kafka().admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: [...createdTopics], timeout: 30_000 });
    createdTopics.clear();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Creates a topic; retried, since a broker that has just started can refuse for a while. */
export async function createTopic(topic: string, partitions = 6): Promise<void> {
  createdTopics.add(topic);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const admin = kafka().admin();
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export function uniqueTopic(name: string): string {
  return `tm-bench.${name}.${randomBytes(4).toString('hex')}`;
}

/** Counts records on a topic from the beginning; `onMessage` sees each one as it arrives. */
export async function startCounter(topic: string, onMessage?: (value: Buffer, receivedAt: number) => void): Promise<{ count: () => number; stop: () => Promise<void> }> {
  let count = 0;
  const consumer: Consumer = kafka().consumer({ groupId: `tm-bench-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 5, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let joined!: () => void;
  const ready = new Promise<void>((r) => (joined = r));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.run({
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      const now = performance.now();
      for (const message of batch.messages) {
        count++;
        onMessage?.(message.value ?? Buffer.alloc(0), now);
      }
    },
  });
  await ready;
  return { count: () => count, stop: () => consumer.disconnect() };
}

/**
 * Polls `condition` every `everyMs` (default 100 ms: a check must not load the database that is
 * being measured; the runs last seconds, so the resolution is ample).
 */
export async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** A ~200-byte JSON body. */
export function body(i: number): Record<string, unknown> {
  return { orderId: `order-${i}`, customer: `customer-${i % 977}`, amountCents: 1000 + (i % 5000), currency: 'EUR', items: [{ sku: `sku-${i % 311}`, quantity: 1 + (i % 3) }], note: 'x'.repeat(60) };
}

export async function machine(db: DataSource): Promise<string> {
  const [{ version }] = await db.query('SELECT version()');
  return `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${String(version).split(',')[0]}, Kafka 3.9.2 (KRaft, 1 node, loopback)`;
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU used so far (Linux: /proc): the machine's busy and total ticks, and by process, in ms. */
export interface CpuSample {
  busy: number;
  total: number;
  node: number;
  postgres: number;
  broker: number;
}

/** What was used between two samples: busy cores, and CPU milliseconds per 1,000 messages by process. */
export interface CpuUse {
  busyCores: number;
  cores: number;
  /** `node`: this process (`self` samples) or every Node process on the machine; `broker`: every JVM (the Kafka broker). */
  msPer1000: { node: number; postgres: number; broker: number };
}

/** USER_HZ: /proc counts CPU time in hundredths of a second on Linux. */
const TICK_MS = 10;

/** Ms of CPU of Node processes (their main thread names the process `MainThread`), PostgreSQL's and the broker's JVM (`java`), from /proc. */
function processMs(): { node: number; postgres: number; broker: number } {
  const ms = { node: 0, postgres: 0, broker: 0 };
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const which = name === 'node' || name === 'MainThread' ? 'node' : name === 'postgres' ? 'postgres' : name === 'java' ? 'broker' : undefined;
      if (!which) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ms[which] += (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
    } catch {
      // gone meanwhile
    }
  }
  return ms;
}

/** A CPU sample; `node: 'self'` counts this process's CPU as Node's (more precise than /proc's ticks). Undefined off Linux. */
export function cpuSample(node: 'self' | 'all' = 'self'): CpuSample | undefined {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
    const processes = processMs();
    const usage = process.cpuUsage();
    return { busy, total: busy + idle! + iowait!, ...processes, node: node === 'self' ? (usage.user + usage.system) / 1000 : processes.node };
  } catch {
    return undefined;
  }
}

export function cpuBetween(from: CpuSample | undefined, to: CpuSample | undefined, messages: number): CpuUse | undefined {
  if (!from || !to || to.total === from.total || messages <= 0) return undefined;
  const per1000 = (ms: number) => (ms / messages) * 1000;
  return {
    busyCores: ((to.busy - from.busy) / (to.total - from.total)) * cpus().length,
    cores: cpus().length,
    msPer1000: { node: per1000(to.node - from.node), postgres: per1000(to.postgres - from.postgres), broker: per1000(to.broker - from.broker) },
  };
}

/** "Node 12.3, PostgreSQL 4.5, broker 1.2" (CPU ms per 1,000 messages). */
export function cpuLine(use: Pick<CpuUse, 'msPer1000'>): string {
  const { node, postgres, broker } = use.msPer1000;
  return `Node ${fmt(node, 1)}, PostgreSQL ${fmt(postgres, 1)}, broker ${fmt(broker, 1)}`;
}
