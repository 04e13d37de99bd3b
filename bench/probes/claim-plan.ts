// Probe behind bench/RESULTS.md, workload 2: the plan of the relay's one-statement claim on
// PostgreSQL with 20,000 committed messages (the statement of src/store/delivery.store.ts). node bench/dist/probes/claim-plan.js
import { benchDatabase } from '../harness.js';
import { seedCommitted } from '../workloads/relay-drain.js';
const db = await benchDatabase();
await seedCommitted(db.dataSource, 't', 20000);
const now = 'statement_timestamp()';
const t = 'transactional_message';
const sql = `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) WITH heads AS (SELECT r.seq, r.message_key FROM ${t} r WHERE r.status = 'COMMITTED' AND r.next_attempt_at <= ${now} AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= ${now}) AND (r.message_key IS NULL OR NOT EXISTS (SELECT 1 FROM ${t} e WHERE e.message_key = r.message_key AND e.status = 'COMMITTED' AND e.seq < r.seq)) ORDER BY r.seq LIMIT 500 FOR UPDATE SKIP LOCKED), followers AS (SELECT f.seq FROM heads h CROSS JOIN LATERAL (SELECT min(x.seq) AS barrier FROM ${t} x WHERE x.message_key = h.message_key AND x.status = 'COMMITTED' AND x.seq > h.seq AND x.next_attempt_at > ${now}) b CROSS JOIN LATERAL (SELECT c.seq FROM ${t} c WHERE c.message_key = h.message_key AND c.status = 'COMMITTED' AND c.seq > h.seq AND (b.barrier IS NULL OR c.seq < b.barrier) ORDER BY c.seq LIMIT GREATEST(500 - (SELECT count(*) FROM heads)::int, 0)) f ORDER BY f.seq LIMIT GREATEST(500 - (SELECT count(*) FROM heads)::int, 0)) UPDATE ${t} m SET lease_owner = 'x', lease_token = 'y', lease_expires_at = ${now} + interval '60 seconds' WHERE m.seq IN (SELECT seq FROM heads UNION ALL SELECT seq FROM followers) AND m.status = 'COMMITTED' AND (m.lease_expires_at IS NULL OR m.lease_expires_at <= ${now}) RETURNING m.seq`;
const qr = db.dataSource.createQueryRunner();
await qr.startTransaction();
for (const row of await qr.query(sql)) console.log(row['QUERY PLAN']);
await qr.rollbackTransaction(); await qr.release();
await db.drop(); process.exit(0);
