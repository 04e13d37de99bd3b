import { hash32 } from '../sql-params.js';
import { createBucketTables, dropBucketTables, retireRowLeases, unretireRowLeases } from './bucket-tables.js';
import { createDelayedMessages, dropDelayedMessages } from './delayed-messages.js';
import { deadKeyIndex, operatorIndex, partialIndexes } from './partial-indexes.js';
import { queryPreparedPg } from './prepared-sql.js';
import { probePreparedStatements } from './prepared-statements.probe.js';
import type { SqlDialect } from './sql-dialect.interface.js';

const q = (identifier: string): string => `"${identifier}"`;

const DELAYED = { quote: q, time: 'TIMESTAMPTZ(3)', partialIndexes: true, dropIndex: (_: string, index: string) => `DROP INDEX IF EXISTS ${q(index)}` };

/** @internal PostgreSQL 12+. */
export const postgresDialect: SqlDialect = {
  name: 'postgres',
  singleConnection: false,
  notifications: true,
  ownIsolation: undefined,
  // One array parameter: a batch of 500 is one bind, not 500.
  inBigints: (column, values, p) => `${column} = ANY(${p.add(values)}::bigint[])`,
  pairsTable: (pairs, p) => `(SELECT * FROM unnest(${p.add(pairs.map(([k]) => k))}::text[], ${p.add(pairs.map(([, m]) => m))}::bigint[]) AS u(k, m))`,
  queryPrepared: queryPreparedPg,
  probePreparedStatements,
  insertIgnore: (table, columns, values) => `INSERT INTO ${table} (${columns}) VALUES ${values} ON CONFLICT DO NOTHING`,
  // A transaction-scoped advisory lock on (table, key), taken by the INSERT itself: one round trip.
  keyLock: (lock, p) => ({
    before: [],
    from: ` FROM (SELECT pg_advisory_xact_lock(${p.add(lock.lockClass)}::int, ${p.add(hash32(lock.key))}::int)) AS key_lock`,
  }),
  skipLocked: 'FOR UPDATE SKIP LOCKED',
  vacuum: (table) => `VACUUM ${table}`,
  forUpdate: 'FOR UPDATE',
  quote: q,
  param: (index) => `$${index}`,
  // statement_timestamp(), not now(): now() is frozen when the transaction starts, and a message
  // stored at the end of a long transaction must not look older than it is. Within one statement
  // it is constant, so created_at + immunity = next_check_at exactly.
  now: () => 'statement_timestamp()',
  ageMs: (column) => `(EXTRACT(EPOCH FROM (statement_timestamp() - ${column})) * 1000)`,
  // float8, not int: a duration of 2^31 ms (about 24.8 days) or more overflows int4, and a
  // retention or a maximum age of 30 days is common. float8 holds every whole ms up to 2^53.
  nowPlusMs: (param) => `(statement_timestamp() + ${param}::float8 * interval '1 millisecond')`,
  timeParam: (param) => `(${param}::timestamp AT TIME ZONE 'UTC')`,
  selectTime: (column) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')`,
  createTables: (t) => [
    `CREATE TABLE "${t}" (
      "seq" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      "id" UUID NOT NULL,
      "producer_group" VARCHAR(255) NOT NULL,
      "topic" VARCHAR(249) NOT NULL,
      "message_key" VARCHAR(255),
      "tags" VARCHAR(1024),
      "properties" TEXT,
      "body" BYTEA NOT NULL,
      "content_type" VARCHAR(64) NOT NULL,
      "status" VARCHAR(16) NOT NULL,
      "created_at" TIMESTAMPTZ(3) NOT NULL,
      "transaction_ended_at" TIMESTAMPTZ(3),
      "check_immunity_ms" INTEGER NOT NULL,
      "check_count" INTEGER NOT NULL DEFAULT 0,
      "next_check_at" TIMESTAMPTZ(3),
      "delivery_attempts" INTEGER NOT NULL DEFAULT 0,
      "next_attempt_at" TIMESTAMPTZ(3),
      "last_error" TEXT,
      "lease_owner" VARCHAR(255),
      "lease_token" VARCHAR(64),
      "lease_expires_at" TIMESTAMPTZ(3),
      "delivered_at" TIMESTAMPTZ(3),
      CONSTRAINT "${t}_id_key" UNIQUE ("id")
    ) WITH (fillfactor = 80)`,
    // fillfactor: room on each page, so the relay's lease writes (no indexed column changes)
    // are HOT updates that touch no index.
    ...partialIndexes(t),
    `CREATE TABLE "${t}_check" (
      "seq" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      "message_id" UUID NOT NULL,
      "check_number" INTEGER NOT NULL,
      "checked_at" TIMESTAMPTZ(3) NOT NULL,
      "result" VARCHAR(16) NOT NULL,
      "error" TEXT,
      "duration_ms" INTEGER NOT NULL,
      "checker" VARCHAR(255) NOT NULL
    )`,
    `CREATE INDEX "${t}_check_message_idx" ON "${t}_check" ("message_id", "check_number")`,
  ],
  dropTables: (t) => [`DROP TABLE IF EXISTS "${t}_check"`, `DROP TABLE IF EXISTS "${t}"`],
  createDeadKeyIndex: (t) => [deadKeyIndex(t)],
  dropDeadKeyIndex: (t) => [`DROP INDEX IF EXISTS "${t}_dead_key_idx"`],
  createOperatorIndex: (t) => [operatorIndex(t)],
  dropOperatorIndex: (t) => [`DROP INDEX IF EXISTS "${t}_operator_idx"`],
  createBuckets: (t) => createBucketTables(t, { quote: q, smallint: 'SMALLINT', text: 'VARCHAR(255)', time: 'TIMESTAMPTZ(3)', tableSuffix: '' }),
  dropBuckets: (t) => dropBucketTables(t, { quote: q }),
  retireRowLeases: (t) => retireRowLeases(t, { quote: q, partialIndexes: true, forever: "'9999-12-31 23:59:59+00'" }),
  unretireRowLeases: (t) => unretireRowLeases(t, { quote: q, partialIndexes: true }, (_, index) => `DROP INDEX IF EXISTS ${q(index)}`),
  createDelayedMessages: (t) => createDelayedMessages(t, DELAYED),
  dropDelayedMessages: (t) => dropDelayedMessages(t, DELAYED),
  upsert: (table, columns, values, key, update) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${values}) ON CONFLICT (${key}) DO UPDATE SET ${update.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`,
  createInboxTable: (t) => [
    `CREATE TABLE "${t}" ("consumer" VARCHAR(255) NOT NULL, "message_id" VARCHAR(64) NOT NULL, "received_at" TIMESTAMPTZ(3) NOT NULL, ` +
      `PRIMARY KEY ("consumer", "message_id"))`,
    `CREATE INDEX "${t}_received_idx" ON "${t}" ("received_at")`,
  ],
};
