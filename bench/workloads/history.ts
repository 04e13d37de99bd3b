import type { DataSource } from 'typeorm';
import { benchDatabase, createTopic, fmt, uniqueTopic } from '../harness.js';
import { drainWithRelay, seedCommitted } from './relay-drain.js';

/** Delivered rows the relay has to live with until they are pruned. */
async function seedDelivered(db: DataSource, count: number): Promise<void> {
  for (let offset = 0; offset < count; offset += 500_000) {
    const n = Math.min(500_000, count - offset);
    await db.query(
      `INSERT INTO transactional_message (id, producer_group, topic, message_key, body, content_type, status, created_at,
         transaction_ended_at, check_immunity_ms, delivery_attempts, delivered_at)
       SELECT gen_random_uuid(), 'bench', 'tm-bench.history', 'key-' || (g % 1000), convert_to(repeat('x', 200), 'UTF8'),
         'application/json', 'DELIVERED', now() - interval '1 hour', now() - interval '1 hour', 10000, 1, now() - interval '1 hour'
       FROM generate_series($1::int, $2::int) g`,
      [offset + 1, offset + n],
    );
  }
}

/** Half messages waiting for checks far in the future (no handler will be asked during the run). */
async function seedHalf(db: DataSource, count: number): Promise<void> {
  await db.query(
    `INSERT INTO transactional_message (id, producer_group, topic, message_key, body, content_type, status, created_at,
       check_immunity_ms, next_check_at)
     SELECT gen_random_uuid(), 'bench', 'tm-bench.half', 'key-' || (g % 1000), convert_to(repeat('x', 200), 'UTF8'),
       'application/json', 'HALF', now(), 3600000, now() + interval '1 hour'
     FROM generate_series(1, $1::int) g`,
    [count],
  );
}

/** Workload 4: relay throughput with a large delivered history, and with a large backlog of half messages. */
export async function history(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const messages = quick ? 10_000 : 20_000;
  const delivered = quick ? 500_000 : 5_000_000;
  const half = quick ? 20_000 : 100_000;
  const measure = async (seed: (db: DataSource) => Promise<void>) => {
    const db = await benchDatabase();
    try {
      await seed(db.dataSource);
      await db.dataSource.query('VACUUM ANALYZE transactional_message');
      const topic = uniqueTopic('history');
      await createTopic(topic);
      await seedCommitted(db.dataSource, topic, messages);
      return await drainWithRelay(db.dataSource, topic, messages);
    } finally {
      await db.drop();
    }
  };
  const empty = await measure(async () => undefined);
  const withHistory = await measure((db) => seedDelivered(db, delivered));
  const withHalf = await measure((db) => seedHalf(db, half));
  const ratios = { history: withHistory / empty, half: withHalf / empty };
  return {
    lines: [
      `Workload 4 — scaling with history and doubt (${fmt(messages)} committed messages drained each time)`,
      `  empty table ${fmt(empty)} msg/s; with ${fmt(delivered)} delivered rows ${fmt(withHistory)} msg/s, ratio ${fmt(ratios.history, 2)}` +
        `  (target ≥ 0.90: ${ratios.history >= 0.9 ? 'met' : 'MISSED'})`,
      `  with ${fmt(half)} HALF messages waiting ${fmt(withHalf)} msg/s, ratio ${fmt(ratios.half, 2)}  (target ≥ 0.90: ${ratios.half >= 0.9 ? 'met' : 'MISSED'})`,
    ],
    ratios,
  };
}
