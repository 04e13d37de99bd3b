import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { benchDatabase, body, fmt, POSTGRES_URL, waitUntil } from '../harness.js';
import { drainWithRelay, seedCommitted } from './relay-drain.js';
import { NoopPublisher } from './relay-only.js';

type Peer = typeof import('pg-transactional-outbox');
type PeerMode = 'polling' | 'replication';

const TABLE = 'outbox';
const SCHEMA = 'public';

/**
 * Inserts `count` outbox rows of pg-transactional-outbox, as its `initializeMessageStorage` writes
 * them (~200-byte JSON payloads), `keys` segments (its unit of order, our message key), in
 * created_at order.
 */
async function seedPeer(db: DataSource, count: number, keys = 1_000): Promise<void> {
  const sample = JSON.stringify(body(0));
  await db.query(
    `INSERT INTO ${SCHEMA}.${TABLE} (id, aggregate_type, aggregate_id, message_type, segment, payload, created_at)
     SELECT gen_random_uuid(), 'order', 'order-' || g, 'order_paid', 'key-' || (g % $2), replace($1, 'order-0', 'order-' || g)::jsonb,
       now() + g * interval '1 microsecond'
     FROM generate_series(1, $3::int) g ORDER BY g`,
    [sample, keys, count],
  );
  await db.query(`ANALYZE ${SCHEMA}.${TABLE}`);
}

/** The listener's connection: the bench database, as the URL's user (trust auth on loopback). */
function listenerConfig(db: DataSource) {
  const url = new URL((db.options as { url: string }).url);
  return { host: url.hostname, port: Number(url.port || 5432), user: decodeURIComponent(url.username) || 'postgres', database: url.pathname.slice(1) };
}

/**
 * pg-transactional-outbox draining `count` seeded messages to a no-op handler, in its polling mode
 * (its `next_outbox_messages` function, per-segment order) or its logical-replication mode (the
 * segment-mutex controller: per-segment order, segments in parallel). Set up with its own
 * `DatabaseSetup` statements; returns messages processed per second until no row is left pending, and
 * how many it abandoned.
 */
async function drainPeer(peer: Peer, db: DataSource, mode: PeerMode, count: number, batchSize: number): Promise<{ rate: number; abandoned: number }> {
  const setup = { outboxOrInbox: 'outbox' as const, database: '', schema: SCHEMA, table: TABLE, listenerRole: 'postgres' };
  await db.query(peer.DatabaseSetup.dropAndCreateTable(setup));
  const slot = `tm_bench_peer_${randomBytes(4).toString('hex')}`;
  const publication = `${slot}_pub`;
  if (mode === 'polling') {
    await db.query(peer.DatabaseSetup.createPollingFunction({ ...setup, nextMessagesName: 'next_outbox_messages' }));
    await db.query(peer.DatabaseSetup.setupPollingIndexes({ ...setup, nextMessagesName: 'next_outbox_messages' }));
  } else {
    await db.query(`CREATE PUBLICATION ${publication} FOR TABLE ${SCHEMA}.${TABLE} WITH (publish = 'insert')`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  }
  try {
    // Replication reads the inserts from the slot's WAL, so the slot exists before the seed.
    await seedPeer(db, count);
    let handled = 0;
    const handler = {
      handle: async () => {
        handled++;
      },
    };
    const logger = peer.getDisabledLogger();
    const settings = { dbSchema: SCHEMA, dbTable: TABLE, enableMaxAttemptsProtection: false, enablePoisonousMessageProtection: false };
    const started = performance.now();
    const [shutdown] =
      mode === 'polling'
        ? peer.initializePollingMessageListener(
            {
              outboxOrInbox: 'outbox',
              dbListenerConfig: listenerConfig(db),
              settings: { ...settings, nextMessagesFunctionName: 'next_outbox_messages', nextMessagesBatchSize: batchSize, nextMessagesPollingIntervalInMs: 10 },
            },
            handler,
            logger,
          )
        : peer.initializeReplicationMessageListener(
            { outboxOrInbox: 'outbox', dbListenerConfig: listenerConfig(db), settings: { ...settings, dbPublication: publication, dbReplicationSlot: slot } },
            handler,
            logger,
            { concurrencyStrategy: peer.createReplicationSegmentMutexConcurrencyController() },
          );
    try {
      // A message whose attempts ran out (its handler timed out waiting for a connection, at large
      // batches) is abandoned: not delivered. Counted apart, not waited for.
      await waitUntil(`pg-transactional-outbox (${mode}) to process ${count} messages`, async () => {
        const [{ left }] = await db.query(`SELECT count(*)::int AS left FROM ${SCHEMA}.${TABLE} WHERE processed_at IS NULL AND abandoned_at IS NULL`);
        return left === 0;
      }, 900_000);
      const seconds = (performance.now() - started) / 1000;
      const [{ processed }] = await db.query(`SELECT count(*)::int AS processed FROM ${SCHEMA}.${TABLE} WHERE processed_at IS NOT NULL`);
      if (handled < processed) throw new Error(`bench: pg-transactional-outbox marked ${processed} processed but its handler ran ${handled} times`);
      return { rate: processed / seconds, abandoned: count - processed };
    } finally {
      await shutdown();
      // Its handlers still running (timed out, at large batches) keep their connections a while; a
      // database dropped under them makes its pool emit an error nobody listens to any more.
      await waitUntil('the connections of pg-transactional-outbox to close', async () => {
        const [{ n }] = await db.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
        return n < (db.driver as unknown as { master: { totalCount: number } }).master.totalCount;
      }, 60_000);
    }
  } finally {
    if (mode === 'replication') {
      // A slot left behind keeps WAL on the server for good: dropped whatever happened above.
      await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => undefined);
    }
  }
}

/**
 * Workload 8: the best peer measured here, pg-transactional-outbox (PostgreSQL only), draining the
 * same backlog as our relay (1,000 keys, no-op sinks on both sides), side by side in one run: its
 * polling listener, its logical-replication listener (only where the server has `wal_level =
 * logical`; said so otherwise), our relay on `'rows'` and on `'buckets'` deleting delivered rows.
 */
export async function peer(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = Number(process.env.TM_BENCH_PEER_COUNT ?? (quick ? 20_000 : 50_000));
  const batchSize = Number(process.env.TM_BENCH_PEER_BATCH ?? 50);
  const lib: Peer = (await import('pg-transactional-outbox')).default ?? (await import('pg-transactional-outbox'));
  const inFresh = async <T>(run: (db: DataSource) => Promise<T>): Promise<T> => {
    const db = await benchDatabase();
    try {
      return await run(db.dataSource);
    } finally {
      await db.drop();
    }
  };
  const ours = (retentionMs?: number) =>
    inFresh(async (db) => {
      const sink = new NoopPublisher();
      await seedCommitted(db, 'tm-bench.peer', count);
      const rate = await drainWithRelay(db, null, count, 500, 1, sink, undefined, { retentionMs });
      if (sink.published < count) throw new Error(`bench: ${count} messages marked delivered but the sink took ${sink.published}`);
      return rate;
    });
  const walLevel = await inFresh(async (db) => String((await db.query('SHOW wal_level'))[0].wal_level));
  const pollingRun = await inFresh((db) => drainPeer(lib, db, 'polling', count, batchSize));
  const replicationRun = walLevel === 'logical' ? await inFresh((db) => drainPeer(lib, db, 'replication', count, batchSize)) : undefined;
  const buckets = await ours(0);
  const polling = pollingRun.rate;
  const replication = replicationRun?.rate;
  const best = Math.max(polling, replication ?? 0);
  const abandoned = (run: { abandoned: number }) => (run.abandoned > 0 ? `, **${fmt(run.abandoned)} abandoned** (attempts ran out: not delivered)` : '');
  return {
    lines: [
      `Workload 8 — pg-transactional-outbox vs this relay, ${fmt(count)} messages in 1,000 keys, no-op sinks (${POSTGRES_URL.replace(/\/\/[^@]*@/, '//')})`,
      `  pg-transactional-outbox, polling (batch ${batchSize}, 10 ms interval) ${fmt(polling)} msg/s${abandoned(pollingRun)}`,
      replication === undefined
        ? `  pg-transactional-outbox, logical replication: not measured (wal_level is '${walLevel}'; it needs wal_level = logical and a server restart)`
        : `  pg-transactional-outbox, logical replication (segment mutex) ${fmt(replication)} msg/s${abandoned(replicationRun!)}`,
      `  this relay (defaults: delivered rows deleted) ${fmt(buckets)} msg/s, ${fmt(buckets / best, 1)}× the best peer mode` +
        `${replication === undefined ? '' : `, ${fmt(buckets / polling, 1)}× polling, ${fmt(buckets / replication, 1)}× replication`}`,
    ],
    ratios: { 'relay/peer': buckets / best, ...(replication === undefined ? {} : { 'buckets/replication': buckets / replication }) },
  };
}
