import { benchApp, CheckAnswerer } from '../app.js';
import { benchDatabase, fmt, waitUntil } from '../harness.js';

/** Workload 5: UNKNOWN messages resolved by a check handler (COMMIT), default check settings. */
export async function checkThroughput(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = quick ? 2_000 : 10_000;
  const db = await benchDatabase();
  try {
    await db.dataSource.query(
      `INSERT INTO transactional_message (id, producer_group, topic, message_key, body, content_type, status, created_at,
         check_immunity_ms, next_check_at)
       SELECT gen_random_uuid(), 'bench', 'tm-bench.checks', 'key-' || (g % 1000), convert_to('{"n":1}', 'UTF8'),
         'application/json', 'HALF', now(), 0, now() - interval '1 second'
       FROM generate_series(1, $1::int) g`,
      [count],
    );
    const started = performance.now();
    const app = await benchApp(db.dataSource, { relay: { pollIntervalMs: 50 } });
    try {
      await waitUntil('all checked', async () => {
        const [{ left }] = await db.dataSource.query(`SELECT count(*)::int AS left FROM transactional_message WHERE status = 'HALF'`);
        return left === 0;
      }, 600_000);
      const rate = count / ((performance.now() - started) / 1000);
      return {
        lines: [
          `Workload 5 — check throughput (${fmt(count)} half messages due, a handler answering COMMIT; batch 50, concurrency 8)`,
          `  ${fmt(rate)} checks/s (${fmt(app.get(CheckAnswerer).checks)} handler calls)`,
        ],
        ratios: { 'checks/s': rate },
      };
    } finally {
      await app.close();
    }
  } finally {
    await db.drop();
  }
}
