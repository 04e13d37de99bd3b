import { createBucketTables, dropBucketTables, retireRowLeases, unretireRowLeases } from './bucket-tables.js';
import { createDelayedMessages, dropDelayedMessages } from './delayed-messages.js';
import { deadKeyIndex, operatorIndex, partialIndexes } from './partial-indexes.js';
import type { SqlDialect } from './sql-dialect.interface.js';

const q = (identifier: string): string => `"${identifier}"`;
const NOW = `strftime('%Y-%m-%d %H:%M:%f', 'now')`;

const DELAYED = { quote: q, time: 'TEXT', partialIndexes: true, dropIndex: (_: string, index: string) => `DROP INDEX IF EXISTS ${q(index)}` };

/** @internal SQLite 3.35+ (better-sqlite3). Times are UTC text 'YYYY-MM-DD HH:MM:SS.mmm', which sorts as time. */
export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  singleConnection: true,
  notifications: false,
  ownIsolation: undefined,
  inBigints: (column, values, p) => `${column} IN (${p.list(values)})`,
  // One JSON parameter, whatever the count: SQLite allows 500 terms in a compound SELECT (a UNION
  // ALL per pair stalled the relay beyond 500 keys).
  pairsTable: (pairs, p) =>
    `(SELECT json_extract(j.value, '$[0]') AS k, json_extract(j.value, '$[1]') AS m FROM json_each(${p.add(JSON.stringify(pairs))}) j)`,
  // better-sqlite3 caches its prepared statements itself.
  queryPrepared: (manager, text, values) => manager.query(text, values),
  insertIgnore: (table, columns, values) => `INSERT INTO ${table} (${columns}) VALUES ${values} ON CONFLICT DO NOTHING`,
  // One writer at a time: transactions commit in the order they write.
  keyLock: () => ({ before: [], from: '' }),
  // One connection, one writer, one relay: there is nothing to lock against.
  skipLocked: '',
  // A delete removes the index entries at once.
  vacuum: () => null,
  forUpdate: '',
  quote: q,
  param: () => '?',
  now: () => NOW,
  ageMs: (column) => `((julianday('now') - julianday(${column})) * 86400000.0)`,
  nowPlusMs: (param) => `strftime('%Y-%m-%d %H:%M:%f', 'now', (${param} / 1000.0) || ' seconds')`,
  timeParam: (param) => param,
  selectTime: (column) => column,
  createTables: (t) => [
    `CREATE TABLE "${t}" (
      "seq" INTEGER PRIMARY KEY AUTOINCREMENT,
      "id" TEXT NOT NULL,
      "producer_group" TEXT NOT NULL,
      "topic" TEXT NOT NULL,
      "message_key" TEXT,
      "tags" TEXT,
      "properties" TEXT,
      "body" BLOB NOT NULL,
      "content_type" TEXT NOT NULL,
      "status" TEXT NOT NULL,
      "created_at" TEXT NOT NULL,
      "transaction_ended_at" TEXT,
      "check_immunity_ms" INTEGER NOT NULL,
      "check_count" INTEGER NOT NULL DEFAULT 0,
      "next_check_at" TEXT,
      "delivery_attempts" INTEGER NOT NULL DEFAULT 0,
      "next_attempt_at" TEXT,
      "last_error" TEXT,
      "lease_owner" TEXT,
      "lease_token" TEXT,
      "lease_expires_at" TEXT,
      "delivered_at" TEXT,
      CONSTRAINT "${t}_id_key" UNIQUE ("id")
    )`,
    ...partialIndexes(t),
    `CREATE TABLE "${t}_check" (
      "seq" INTEGER PRIMARY KEY AUTOINCREMENT,
      "message_id" TEXT NOT NULL,
      "check_number" INTEGER NOT NULL,
      "checked_at" TEXT NOT NULL,
      "result" TEXT NOT NULL,
      "error" TEXT,
      "duration_ms" INTEGER NOT NULL,
      "checker" TEXT NOT NULL
    )`,
    `CREATE INDEX "${t}_check_message_idx" ON "${t}_check" ("message_id", "check_number")`,
  ],
  dropTables: (t) => [`DROP TABLE IF EXISTS "${t}_check"`, `DROP TABLE IF EXISTS "${t}"`],
  createDeadKeyIndex: (t) => [deadKeyIndex(t)],
  dropDeadKeyIndex: (t) => [`DROP INDEX IF EXISTS "${t}_dead_key_idx"`],
  createOperatorIndex: (t) => [operatorIndex(t)],
  dropOperatorIndex: (t) => [`DROP INDEX IF EXISTS "${t}_operator_idx"`],
  createBuckets: (t) => createBucketTables(t, { quote: q, smallint: 'INTEGER', text: 'TEXT', time: 'TEXT', tableSuffix: '' }),
  dropBuckets: (t) => dropBucketTables(t, { quote: q }),
  retireRowLeases: (t) => retireRowLeases(t, { quote: q, partialIndexes: true, forever: "'9999-12-31 23:59:59.999'" }),
  unretireRowLeases: (t) => unretireRowLeases(t, { quote: q, partialIndexes: true }, (_, index) => `DROP INDEX IF EXISTS ${q(index)}`),
  createDelayedMessages: (t) => createDelayedMessages(t, DELAYED),
  dropDelayedMessages: (t) => dropDelayedMessages(t, DELAYED),
  upsert: (table, columns, values, key, update) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${values}) ON CONFLICT (${key}) DO UPDATE SET ${update.map((c) => `${c} = excluded.${c}`).join(', ')}`,
  createInboxTable: (t) => [
    `CREATE TABLE "${t}" ("consumer" VARCHAR(255) NOT NULL, "message_id" VARCHAR(64) NOT NULL, "received_at" TEXT NOT NULL, ` +
      `PRIMARY KEY ("consumer", "message_id"))`,
    `CREATE INDEX "${t}_received_idx" ON "${t}" ("received_at")`,
  ],
};
