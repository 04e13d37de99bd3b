import { Kafka, logLevel } from 'kafkajs';
import type { WorkerConfig } from '../worker/protocol.js';
import type { TestDatabase } from '../../support/databases.js';
import type { WorkerFleet } from './workers.js';
import { runOracle, settled, violations, type OracleReport, type Pause } from './oracle.js';

/** Relay timings of the workers: short leases so that a killed relay's claim is taken over quickly. */
export const FAULT_RELAY = {
  // Delivered messages kept (the default, 0, deletes them): these tests read their final status,
  // and the oracle when each message was decided (a check that raced a decision is allowed).
  retentionMs: 7 * 86_400_000,
  pollIntervalMs: 50,
  leaseMs: 2_000,
  backoffInitialMs: 20,
  backoffMaxMs: 500,
  shutdownTimeoutMs: 2_000,
  batchSize: 100,
} as const;

export const FAULT_CHECK = { intervalMs: 200, handlerTimeoutMs: 500 } as const;

/** A worker configuration on `db` and `topic`: an app with the relay and the looking-up check handler unless `extra` says otherwise. */
export function workerConfig(
  db: TestDatabase & { url: string },
  topic: string,
  brokers: string[],
  name: string,
  extra: Partial<WorkerConfig> = {},
): WorkerConfig {
  return {
    role: 'app',
    name,
    database: { type: db.kind as 'postgres' | 'mariadb', url: db.url },
    tableName: db.tableName,
    brokers,
    topic,
    producerGroup: 'fault-shop',
    relay: true,
    relayOptions: FAULT_RELAY,
    checkMode: 'lookup',
    checkOptions: FAULT_CHECK,
    checkImmunityMs: 500,
    ...extra,
  };
}

/** The consumer worker of `topic` (kafkajs + TransactionalInbox), restarted by `superviseConsumer` if it crashes. */
export function consumerConfig(db: TestDatabase & { url: string }, topic: string, brokers: string[]): WorkerConfig {
  return workerConfig(db, topic, brokers, 'consumer', { role: 'consumer', relay: false, checkMode: 'none', consumerGroup: `${topic}.consumer` });
}

/**
 * Waits until the run has settled (nothing HALF or COMMITTED, every paid order consumed), then
 * runs the oracle. On a timeout the failure says what was left, with the workers' log tails.
 */
export async function settleAndCheck(
  db: TestDatabase,
  fleet: WorkerFleet,
  timeoutMs: number,
  options: { exhaustedStatus?: string; pauses?: Pause[]; leaseMs?: number } = {},
): Promise<OracleReport> {
  try {
    // Polled twice a second: the check reads the whole history, and the run is still working.
    const deadline = Date.now() + timeoutMs;
    // TM_FAULT_PROGRESS=1 prints what is left every 10 s: messages to publish (COMMITTED), checks
    // to run (HALF) and effects applied, to tell a slow relay from a slow consumer.
    let nextProgress = process.env.TM_FAULT_PROGRESS === '1' ? Date.now() : Number.POSITIVE_INFINITY;
    while (!(await settled(db))) {
      if (Date.now() > deadline) throw new Error('Timed out waiting for: the run to settle (no HALF or COMMITTED message left, every paid order consumed)');
      if (Date.now() >= nextProgress) {
        nextProgress += 10_000;
        const left = await db.dataSource.query(`SELECT status, COUNT(*) AS n FROM ${db.tableName} WHERE status IN ('HALF', 'COMMITTED') GROUP BY status`);
        const [{ n }] = await db.dataSource.query(`SELECT COUNT(*) AS n FROM fault_effect`);
        const what = left.map((r: { status: string; n: unknown }) => `${r.status}=${r.n}`).join(' ') || 'nothing left to publish';
        process.stderr.write(`[faults] settling: ${what} effects=${n}\n`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (error) {
    const report = await runOracle(db, options);
    const left = await db.dataSource.query(`SELECT status, COUNT(*) AS n FROM ${db.tableName} GROUP BY status`);
    throw new Error(`${(error as Error).message}\nstatuses: ${JSON.stringify(left)}\noracle: ${JSON.stringify(report)}\nlogs in ${fleet.logDir}\n${fleet.tails()}`);
  }
  return runOracle(db, options);
}

/**
 * kafka.exactlyOnce's names for one run (nothing shared between runs or suites), on the given
 * client: what a worker's configuration takes.
 */
export function exactlyOnceConfig(run: string, kafkaClient?: 'kafkajs' | '@platformatic/kafka'): Pick<WorkerConfig, 'exactlyOnce' | 'kafkaClient'> {
  const unique = `${run}.${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  return { exactlyOnce: { transactionalIdPrefix: `tm-test.faults.${unique}`, marksTopic: `tm-test.faults-marks.${unique}` }, ...(kafkaClient ? { kafkaClient } : {}) };
}

/** Fails with the oracle's examples if any violation count is not 0. */
export function expectNoViolations(report: OracleReport): void {
  const counts = violations(report);
  if (Object.values(counts).some((n) => n !== 0)) {
    throw new Error(`the oracle found violations: ${JSON.stringify(counts)}\n${report.examples.join('\n')}`);
  }
}

/** One line of figures for a run, as the soak variant prints them. */
export function figures(label: string, report: OracleReport, extra: Record<string, number | string> = {}): string {
  const { examples: _examples, ...counts } = report;
  return `[faults] ${label}: ${Object.entries({ ...extra, ...counts })
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
}

/** The high watermark sum of a topic: how many records it holds. */
export async function recordsInTopic(topic: string, brokers: string[]): Promise<number> {
  const admin = new Kafka({ brokers, clientId: 'tm-fault-admin', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}


/**
 * Reads the whole topic with a fresh consumer and counts, per key, orders their producer
 * committed whose first copy in Kafka comes after the first copy of a later order of the key:
 * the relay's publish order, independent of any consumer.
 */
export async function publishOrderViolations(
  db: TestDatabase,
  topic: string,
  brokers: string[],
  /**
   * Records to read (default: the topic's high watermarks). With kafka.exactlyOnce the offsets also
   * hold transaction markers and aborted records a read_committed reader never gets: pass the
   * messages delivered, then the scan goes on until 2 s pass without a record beyond them.
   */
  committedRecords?: number,
): Promise<{ records: number; violations: string[] }> {
  const expected = committedRecords ?? (await recordsInTopic(topic, brokers));
  const kafka = new Kafka({ brokers, clientId: 'tm-fault-scan', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `${topic}.scan.${Date.now()}`, maxWaitTimeInMs: 100 });
  const records: Array<{ partition: number; offset: number; no: string; key: string; keySeq: number }> = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const body = JSON.parse(message.value!.toString('utf8'));
        records.push({ partition, offset: Number(message.offset), no: body.no, key: body.key, keySeq: body.keySeq });
      },
    });
    const deadline = Date.now() + 120_000;
    while (records.length < expected) {
      if (Date.now() > deadline) throw new Error(`read ${records.length} of the topic's ${expected} records in 2 minutes`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let seen = -1; committedRecords !== undefined && seen !== records.length; ) {
      seen = records.length;
      await new Promise((r) => setTimeout(r, 2_000));
    }
  } finally {
    await consumer.disconnect();
  }
  const committedByProducer = new Set(
    (await db.dataSource.query(`SELECT no FROM fault_intent WHERE intent = 'commit'`)).map((r: { no: string }) => r.no),
  );
  records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  const seen = new Set<string>();
  const last = new Map<string, { keySeq: number; at: string }>();
  const violations: string[] = [];
  for (const r of records) {
    if (seen.has(r.no) || !committedByProducer.has(r.no)) continue;
    seen.add(r.no);
    const before = last.get(r.key);
    if (before && r.keySeq < before.keySeq) violations.push(`key ${r.key}: #${r.keySeq} first at p${r.partition}@${r.offset}, after #${before.keySeq} at ${before.at}`);
    if (!before || r.keySeq > before.keySeq) last.set(r.key, { keySeq: r.keySeq, at: `p${r.partition}@${r.offset}` });
  }
  return { records: records.length, violations };
}

/**
 * The topic's committed records as the library's own reader decides them (each transactional batch
 * by its producer's next marker: src/publisher/kafka/committed-records.ts), independent of any
 * consumer client's read_committed filter: how many records there are, and copies beyond the first
 * per order.
 */
export async function committedCopies(topic: string, brokers: string[], partitions: number): Promise<{ records: number; duplicates: number }> {
  const { Consumer } = await import('@platformatic/kafka');
  const { readCommittedPartition } = await import('../../../src/publisher/kafka/committed-records.js');
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({ clientId: 'tm-fault-scan', groupId: `${topic}.scan.${Date.now()}`, bootstrapBrokers: brokers });
  try {
    const count = new Map<string, number>();
    let records = 0;
    for (let partition = 0; partition < partitions; partition++) {
      for (const r of await readCommittedPartition(consumer, topic, partition, 0n)) {
        records++;
        const no = String(JSON.parse(r.value!.toString('utf8')).no);
        count.set(no, (count.get(no) ?? 0) + 1);
      }
    }
    return { records, duplicates: [...count.values()].reduce((sum, n) => sum + n - 1, 0) };
  } finally {
    await consumer.close(true);
  }
}
