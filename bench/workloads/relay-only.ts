import type { MessagePublisher, OutgoingMessage, PublishFailure } from 'nestjs-transactional-message';
import type { DataSource } from 'typeorm';
import { benchDatabase, fmt } from '../harness.js';
import { drainRates, seedCommitted, type DrainRates } from './relay-drain.js';

/** A downstream that takes everything at once: what is left is the relay's own work on the database. */
export class NoopPublisher implements MessagePublisher {
  published = 0;

  async connect(): Promise<void> {}

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    this.published += messages.length;
  }

  classify(): PublishFailure {
    return { kind: 'unknown' };
  }

  async close(): Promise<void> {}
}

/**
 * The database's ceiling for draining a queue in order: read the next `batchSize` committed rows
 * past a cursor (the columns a publish needs), then delete them by primary key, one statement
 * each, one after the other. No leases, no order between relays: a bound, not a design.
 */
export async function drainCeiling(db: DataSource, count: number, batchSize = 500, withCursor = true): Promise<number> {
  const started = performance.now();
  let cursor = 0;
  let drained = 0;
  for (;;) {
    // Without a cursor: the head of the committed rows' index, which still holds the entries of the
    // rows just deleted until they are found dead (the price of not keeping a cursor).
    const rows: Array<{ seq: string }> = await db.query(
      `SELECT seq, id, topic, message_key, body, properties, content_type, created_at FROM transactional_message
       WHERE status = 'COMMITTED' AND seq > $1 ORDER BY seq LIMIT $2`,
      [withCursor ? cursor : 0, batchSize],
    );
    if (rows.length === 0) break;
    await db.query('DELETE FROM transactional_message WHERE seq = ANY($1::bigint[])', [rows.map((r) => r.seq)]);
    cursor = Number(rows[rows.length - 1].seq);
    drained += rows.length;
  }
  if (drained !== count) throw new Error(`bench: the ceiling drained ${drained} of ${count} rows`);
  return count / ((performance.now() - started) / 1000);
}

/**
 * Workload 7: the relay draining committed messages to a no-op publisher (no Kafka: the relay's
 * claim, lease and mark alone), against the ceiling above on the same seeded table.
 */
export async function relayOnly(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = Number(process.env.TM_BENCH_COUNT ?? (quick ? 20_000 : 100_000));
  const measure = async <T>(drain: (db: DataSource) => Promise<T>): Promise<T> => {
    const db = await benchDatabase();
    try {
      await seedCommitted(db.dataSource, 'tm-bench.noop', count);
      return await drain(db.dataSource);
    } finally {
      await db.drop();
    }
  };
  const relayWith = async (retentionMs?: number): Promise<DrainRates> => {
    const sink = new NoopPublisher();
    const rates = await measure((db) => drainRates(db, null, count, 500, 1, sink, undefined, { retentionMs }));
    if (sink.published < count) throw new Error(`bench: ${count} messages marked delivered but the sink took ${sink.published}`);
    return rates;
  };
  // Delivered messages kept for a week (marked DELIVERED) and deleted by the mark (the default).
  const keeping = await relayWith(7 * 86_400_000);
  const deleting = await relayWith(0);
  const ceiling = await measure((db) => drainCeiling(db, count));
  const headCeiling = await measure((db) => drainCeiling(db, count, 500, false));
  // The ceiling is a loop with nothing to boot: the relay is compared from its first publish request.
  const ratio = deleting.fromFirstPublish / ceiling;
  return {
    lines: [
      `Workload 7 — relay to a no-op publisher (${fmt(count)} committed messages, 1,000 keys, batches of 500) vs the database's ceiling (read 500 past a cursor, delete them by key)`,
      `  relay, delivered rows deleted (retentionMs 0, the default) ${fmt(deleting.fromFirstPublish)} msg/s from its first publish (${fmt(deleting.withBoot)} with its boot), ratio to the ceiling ${fmt(ratio, 2)} (target ≥ 0.7: ${ratio >= 0.7 ? 'met' : 'MISSED'})`,
      `  relay, delivered rows kept (retentionMs 7 days) ${fmt(keeping.fromFirstPublish)} msg/s (${fmt(keeping.withBoot)} with its boot), ratio to the ceiling ${fmt(keeping.fromFirstPublish / ceiling, 2)}, to deleting ${fmt(keeping.fromFirstPublish / deleting.fromFirstPublish, 2)}`,
      `  ceiling ${fmt(ceiling)} msg/s; without a cursor (the head of the live index each time) ${fmt(headCeiling)} msg/s`,
    ],
    ratios: {
      'relay deleting msg/s': deleting.fromFirstPublish,
      'relay deleting with boot msg/s': deleting.withBoot,
      'relay keeping msg/s': keeping.fromFirstPublish,
      'ceiling msg/s': ceiling,
      'relay/ceiling': ratio,
      'keeping/ceiling': keeping.fromFirstPublish / ceiling,
      'keeping/deleting': keeping.fromFirstPublish / deleting.fromFirstPublish,
      'head/cursor ceiling': headCeiling / ceiling,
    },
  };
}
