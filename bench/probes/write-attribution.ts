// Probe behind bench/RESULTS.md, workload 1 (issue 13's decorated-write target): where the
// decorated write's cost goes, at 1 and 16 callers, against a plain transaction in the same run.
// Each variant is the plain order write plus one thing:
// - tinyRow: one more INSERT of a tiny row (one index entry): the cost of any extra statement;
// - raw/<indexes>: the message INSERT the library sends (key lock included), written by hand into
//   a copy of the message table that has only some of its indexes;
// - raw/all pg client, raw/all named: the same INSERT on node-postgres directly, unnamed and named;
// - peer: pg-transactional-outbox's own storage function (its outbox table and polling indexes);
// - decorated: `@TransactionalMessage` itself (all indexes; prepared, and with preparedStatements: false).
// Rounds rotate the variants' order so drift hits all of them; medians are printed.
// node bench/dist/probes/write-attribution.js [transactions per variant] [rounds]
import { randomUUID } from 'node:crypto';
import { PostgresQueryRunner } from 'typeorm/driver/postgres/PostgresQueryRunner.js';
import { benchApp, BenchOrder, OrderWriter, orderRow } from '../app.js';
import { benchDatabase, body } from '../harness.js';

const count = Number(process.argv[2] ?? 2_000);
const rounds = Number(process.argv[3] ?? 4);
const db = await benchDatabase([BenchOrder]);
const ds = db.dataSource;
const app = await benchApp(ds, { relay: { enabled: false, listenNotify: false } });
const writer = app.get(OrderWriter);
// The same decorated write with the INSERT parsed and planned on every call (before 2026-12-02).
const unprepared = await benchApp(ds, { relay: { enabled: false, listenNotify: false }, preparedStatements: false });
const unpreparedWriter = unprepared.get(OrderWriter);
await ds.query(`CREATE TABLE bench_note (id VARCHAR(40) PRIMARY KEY)`);
await ds.query(`CREATE TABLE bench_note_identity (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id UUID NOT NULL)`);

// The best peer measured here, set up as its docs say (table and polling indexes).
const peer = await import('pg-transactional-outbox');
const peerSetup = { outboxOrInbox: 'outbox' as const, database: '', schema: 'public', table: 'outbox', listenerRole: 'postgres', nextMessagesName: 'next_outbox_messages' };
await ds.query(peer.DatabaseSetup.dropAndCreateTable(peerSetup));
await ds.query(peer.DatabaseSetup.setupPollingIndexes(peerSetup));
const storePeer = peer.initializeMessageStorage(
  { outboxOrInbox: 'outbox', settings: { dbSchema: 'public', dbTable: 'outbox' } } as never,
  peer.getDisabledLogger(),
);

// Copies of the message table with fewer indexes (same columns, identity, fillfactor).
const INDEXES: Record<string, string[]> = {
  pk: [],
  'pk+id': ['id'],
  'pk+id+seq': ['id', 'seq'],
  'pk+id+seq+key': ['id', 'seq', 'key'],
};
for (const [name, indexes] of Object.entries(INDEXES)) {
  const t = `copy_${name.replace(/\+/g, '_')}`;
  await ds.query(`CREATE TABLE ${t} (LIKE transactional_message INCLUDING DEFAULTS INCLUDING IDENTITY) WITH (fillfactor = 80)`);
  await ds.query(`ALTER TABLE ${t} ADD PRIMARY KEY (seq)`);
  if (indexes.includes('id')) await ds.query(`ALTER TABLE ${t} ADD CONSTRAINT ${t}_id_key UNIQUE (id)`);
  if (indexes.includes('seq')) await ds.query(`CREATE INDEX ON ${t} (seq) WHERE status = 'COMMITTED'`);
  if (indexes.includes('key')) await ds.query(`CREATE INDEX ON ${t} (message_key, seq) WHERE status = 'COMMITTED'`);
}

// The statement the library sends for a keyed committed message (see MessageStore.insert).
const insert = (t: string) =>
  `INSERT INTO ${t} (id, producer_group, topic, message_key, tags, properties, body, content_type, status, check_immunity_ms, ` +
  `created_at, transaction_ended_at, next_check_at, next_attempt_at) SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10, statement_timestamp(), ` +
  `statement_timestamp(), NULL, statement_timestamp() FROM (SELECT pg_advisory_xact_lock($11::int, $12::int)) AS key_lock`;
const insertValues = (t: string) =>
  `INSERT INTO ${t} (id, producer_group, topic, message_key, tags, properties, body, content_type, status, check_immunity_ms, ` +
  `created_at, transaction_ended_at, next_check_at, next_attempt_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10, statement_timestamp(), ` +
  `statement_timestamp(), NULL, statement_timestamp())`;
const params = (i: number, run: string) => [
  randomUUID(), 'bench', 'tm-bench.orders', `key-${i % 1000}`, null, null,
  Buffer.from(JSON.stringify({ ...body(i), i, run })), 'application/json', 'COMMITTED', 60_000, 1, i % 1000,
];

// Statements per call, counted on the driver (to see what a decorated call sends).
let statements = 0;
const original = PostgresQueryRunner.prototype.query;
PostgresQueryRunner.prototype.query = function (this: PostgresQueryRunner, ...args: unknown[]) {
  statements++;
  return (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
} as typeof original;

type PgClient = { query(config: { name?: string; text: string; values: unknown[] }): Promise<unknown> };
type Variant = (i: number, run: string) => Promise<unknown>;
const variants: Record<string, Variant> = {
  plain: (i, run) => writer.plain(i, run),
  tinyRow: (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      await m.query(`INSERT INTO bench_note (id) VALUES ($1)`, [`${run}-${i}`]);
    }),
  tinyIdentityRow: (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      await m.query(`INSERT INTO bench_note_identity (id) VALUES ($1)`, [randomUUID()]);
    }),
  'raw/pk no key lock': (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      await m.query(insertValues('copy_pk'), params(i, run).slice(0, 10));
    }),
  'raw/pk SELECT form, no lock': (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      await m.query(insert('copy_pk').replace(/pg_advisory_xact_lock\(\$11::int, \$12::int\)/, '$11::int + $12::int'), params(i, run));
    }),
  'raw/pk no lock, 8 B': (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      const values = params(i, run).slice(0, 10);
      values[6] = Buffer.from('{"i":1}');
      await m.query(insertValues('copy_pk'), values);
    }),
  ...Object.fromEntries(
    Object.keys(INDEXES).map((name): [string, Variant] => [
      `raw/${name}`,
      (i, run) =>
        ds.transaction(async (m) => {
          await m.insert(BenchOrder, orderRow(i, run));
          await m.query(insert(`copy_${name.replace(/\+/g, '_')}`), params(i, run));
        }),
    ]),
  ),
  'raw/all': (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      await m.query(insert('transactional_message'), params(i, run));
    }),
  // The same statement on node-postgres directly (same connection and transaction), without and
  // with a name (a prepared statement: parsed and planned once per connection).
  'raw/all pg client': (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      await (m.queryRunner as unknown as { databaseConnection: PgClient }).databaseConnection.query({ text: insert('transactional_message'), values: params(i, run) });
    }),
  'raw/all named': (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      await (m.queryRunner as unknown as { databaseConnection: PgClient }).databaseConnection.query({ name: 'tm_insert', text: insert('transactional_message'), values: params(i, run) });
    }),
  peer: (i, run) =>
    ds.transaction(async (m) => {
      await m.insert(BenchOrder, orderRow(i, run));
      const client = (m.queryRunner as unknown as { databaseConnection: never }).databaseConnection;
      await storePeer(
        { id: randomUUID(), aggregateType: 'order', aggregateId: `${run}-${i}`, messageType: 'order_paid', segment: `key-${i % 1000}`, payload: { ...body(i), i, run } },
        client,
      );
    }),
  'decorated, unprepared': (i, run) => unpreparedWriter.decorated(i, run),
  decorated: (i, run) => writer.decorated(i, run),
};

async function rate(n: number, callers: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: callers }, async () => { while (next < n) await call(next++); }));
  return n / ((performance.now() - started) / 1000);
}

// TM_PROBE_VARIANTS=<regex>: only the matching variants (plain always runs: it is the baseline).
const only = process.env.TM_PROBE_VARIANTS ? new RegExp(process.env.TM_PROBE_VARIANTS) : undefined;
const names = Object.keys(variants).filter((n) => n === 'plain' || !only || only.test(n));
for (const name of names) {
  statements = 0;
  await rate(10, 1, (i) => variants[name](i, `count-${names.indexOf(name)}-${randomUUID().slice(0, 8)}`));
  console.log(`${name}: ${statements / 10} statements per call`);
}
for (const callers of [1, 16]) {
  const results = new Map<string, number[]>(names.map((n) => [n, []]));
  for (const name of names) await rate(200, callers, (i) => variants[name](i, `warm-${randomUUID().slice(0, 8)}`));
  for (let r = 0; r < rounds; r++) {
    // Rotate and reverse the order each round, so no variant always runs first or last.
    const order = names.map((_, k) => names[(k + r) % names.length]);
    if (r % 2 === 1) order.reverse();
    for (const name of order) results.get(name)!.push(await rate(count, callers, (i) => variants[name](i, `v${names.indexOf(name)}-${r}-${randomUUID().slice(0, 8)}`)));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const plain = median(results.get('plain')!);
  console.log(`\n${callers} caller(s), ${count} transactions per variant, ${rounds} rounds (median, ratio to plain, range):`);
  for (const name of names) {
    const xs = results.get(name)!;
    console.log(`  ${name.padEnd(20)} ${median(xs).toFixed(0).padStart(6)} tx/s  ${(median(xs) / plain).toFixed(2)}  (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`);
  }
}
PostgresQueryRunner.prototype.query = original;
await app.close();
await unprepared.close();
await db.drop();
process.exit(0);
