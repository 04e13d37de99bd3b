// Probe behind bench/RESULTS.md, workload 7: where the time of a bucket relay's drain goes. Seeds
// committed messages, drains them to a no-op publisher, and sums
// the time of each statement kind as the driver saw it (round trip included), against the wall time.
// node bench/dist/probes/bucket-relay.js [count] [retentionMs]
import { PostgresQueryRunner } from 'typeorm/driver/postgres/PostgresQueryRunner.js';
import { benchApp } from '../app.js';
import { benchDatabase, waitUntil } from '../harness.js';
import { seedCommitted } from '../workloads/relay-drain.js';
import { NoopPublisher } from '../workloads/relay-only.js';

const count = Number(process.argv[2] ?? 100_000);
const retentionMs = Number(process.argv[3] ?? 0);
const db = await benchDatabase();
await seedCommitted(db.dataSource, 'probe', count);
const spent = new Map<string, { n: number; ms: number }>();
const original = PostgresQueryRunner.prototype.query;
PostgresQueryRunner.prototype.query = async function (this: PostgresQueryRunner, sql: string, ...rest: unknown[]) {
  const kind = sql.replace(/\s+/g, ' ').slice(0, 48);
  const started = performance.now();
  try {
    return await (original as (...a: unknown[]) => Promise<unknown>).call(this, sql, ...rest);
  } finally {
    const entry = spent.get(kind) ?? { n: 0, ms: 0 };
    entry.n++;
    entry.ms += performance.now() - started;
    spent.set(kind, entry);
  }
} as typeof original;
const sink = new NoopPublisher();
const started = performance.now();
const app = await benchApp(db.dataSource, { publisher: sink, kafka: undefined, relay: { batchSize: 500, pollIntervalMs: 50, retentionMs } });
await waitUntil('drained', () => sink.published >= count, 600_000, 5);
const wall = performance.now() - started;
await app.close();
PostgresQueryRunner.prototype.query = original;
console.log(`${count} messages in ${wall.toFixed(0)} ms (${((count / wall) * 1000).toFixed(0)} msg/s), retentionMs ${retentionMs}`);
for (const [kind, { n, ms }] of [...spent].sort((a, b) => b[1].ms - a[1].ms).slice(0, 10)) {
  console.log(`  ${ms.toFixed(0).padStart(6)} ms  ${String(n).padStart(5)} x  ${(ms / n).toFixed(2).padStart(6)} ms each  ${kind}`);
}
await db.drop();
process.exit(0);
