// Probe behind bench/RESULTS.md, workload 6: the plan of the relay's claim when 20,000 committed
// messages sit in a few keys, after the relay has drained part of them (dead index entries).
// The statement is bench/probes/claim.sql (the windowed claim of src/store/delivery.store.ts), or TM_PROBE_SQL.
// node bench/dist/probes/deep-claim.js [keys] [seconds of draining first] [delivered rows of history first]
import { benchApp } from '../app.js';
import { benchDatabase, createTopic, uniqueTopic } from '../harness.js';
import { seedCommitted } from '../workloads/relay-drain.js';
const keys = Number(process.argv[2] ?? 12);
const seconds = Number(process.argv[3] ?? 5);
const history = Number(process.argv[4] ?? 0);
const db = await benchDatabase();
if (history > 0) {
  await seedCommitted(db.dataSource, 'history', history, 1_000);
  await db.dataSource.query(`UPDATE transactional_message SET status = 'DELIVERED', delivered_at = now()`);
  await db.dataSource.query('VACUUM ANALYZE transactional_message');
}
const topic = uniqueTopic('deep-probe');
await createTopic(topic);
await seedCommitted(db.dataSource, topic, 20_000, keys);
const app = await benchApp(db.dataSource, { relay: { batchSize: 500, pollIntervalMs: 50 } });
await new Promise((r) => setTimeout(r, seconds * 1000));
await app.close();
const [{ left }] = await db.dataSource.query(`SELECT count(*)::int AS left FROM transactional_message WHERE status = 'COMMITTED'`);
console.log(`${keys} keys: delivered ${20_000 - left} in ${seconds} s; the claim now:`);
const sql = process.env.TM_PROBE_SQL ?? (await import('node:fs')).readFileSync(new URL('../../probes/claim.sql', import.meta.url), 'utf8');
const qr = db.dataSource.createQueryRunner();
await qr.startTransaction();
for (const row of await qr.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql}`)) console.log(row['QUERY PLAN']);
await qr.rollbackTransaction();
await qr.release();
await db.drop();
process.exit(0);
