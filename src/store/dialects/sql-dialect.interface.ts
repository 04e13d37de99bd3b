import type { DataSource, EntityManager } from 'typeorm';
import type { PreparedStatementsProbe } from './prepared-statements.probe.js';
import type { SqlParams } from '../sql-params.js';

/** What a keyed message's INSERT locks: its key, in the lock space of one message table. */
export interface KeyLock {
  /** The message table's lock space (a hash of its name). */
  readonly lockClass: number;
  readonly key: string;
  /** The per-key lock rows' table (MySQL/MariaDB), quoted. */
  readonly keyLockTable: string;
}

/**
 * @internal The SQL and the behaviour that differ between databases, one implementation per
 * database in this folder: nothing outside it asks which database it runs on. Everything that
 * reads or compares a time uses the database's clock through `now()` / `nowPlusMs()`, never the
 * application's.
 */
export interface SqlDialect {
  /** For messages and logs only; behaviour is asked of the members below. */
  readonly name: 'postgres' | 'mysql' | 'sqlite';
  /** SQLite has one connection per DataSource: the library serialises its own transactions on it. */
  readonly singleConnection: boolean;
  /** Instances can wake each other with LISTEN/NOTIFY (PostgreSQL). */
  readonly notifications: boolean;
  /** The isolation level of the library's own transactions; `undefined`: the database's default. */
  readonly ownIsolation: 'READ COMMITTED' | undefined;
  /** `column IN (...)` for row numbers (bigint), bound through `p`. */
  inBigints(column: string, values: readonly number[], p: SqlParams): string;
  /** A derived table of (text `k`, bigint `m`) rows, bound through `p` in text order. */
  pairsTable(pairs: ReadonlyArray<readonly [string, number]>, p: SqlParams): string;
  /**
   * Runs `text`, a statement sent on every business transaction (the message INSERT), as a named
   * prepared statement on the connection of `manager` where the driver keeps them per connection
   * (PostgreSQL; PreparedStatementUnavailableError when the server lost it); elsewhere as a query.
   */
  queryPrepared(manager: EntityManager, text: string, values: unknown[]): Promise<unknown>;
  /**
   * Whether a statement prepared in one transaction is still known in the next ones on the
   * DataSource's connections (checked at boot); absent where nothing is prepared.
   */
  probePreparedStatements?(dataSource: DataSource, connectTimeoutMs: number): Promise<PreparedStatementsProbe>;
  /** An INSERT of one row that does nothing when a unique key already has it. */
  insertIgnore(table: string, columns: string, values: string): string;
  /**
   * How a keyed message's INSERT takes its key's lock for the rest of the transaction, so that
   * one key's messages are numbered (seq) in the order their transactions commit: statements to
   * run first, and a FROM clause that makes the INSERT an `INSERT ... SELECT` ('' for VALUES).
   */
  keyLock(lock: KeyLock, p: SqlParams): { before: Array<readonly [sql: string, params: unknown[]]>; from: string };
  /** Row locks for claims, or '' where the database has none (SQLite runs one relay). */
  readonly skipLocked: string;
  /** The statement that clears a table's dead rows and index entries, or null where the database does it on its own. */
  vacuum(table: string): string | null;
  readonly forUpdate: string;
  quote(identifier: string): string;
  /** Placeholder for the 1-based parameter `index`. */
  param(index: number): string;
  /** The database's current time, in milliseconds precision. */
  now(): string;
  /** The database's current time plus the (possibly negative) milliseconds in placeholder `param`. */
  nowPlusMs(param: string): string;
  /** Milliseconds from time column `column` to now, by the database's clock. */
  ageMs(column: string): string;
  /** The time in placeholder `param`, bound as UTC text 'YYYY-MM-DD HH:MM:SS.mmm' (see `timeText`). */
  timeParam(param: string): string;
  /** An expression that reads time column `column` as UTC text 'YYYY-MM-DD HH:MM:SS.mmm...'. */
  selectTime(column: string): string;
  /** DDL creating the message table, its check-history table and their indexes. */
  createTables(table: string): string[];
  dropTables(table: string): string[];
  /** DDL of the second migration: the index that finds a key's DEAD messages (none where an index already serves). */
  createDeadKeyIndex(table: string): string[];
  dropDeadKeyIndex(table: string): string[];
  /** DDL of the third migration: the index operators' lists and counts use (none where one serves). */
  createOperatorIndex(table: string): string[];
  dropOperatorIndex(table: string): string[];
  /** DDL of the fourth migration: the key bucket column, the bucket lease and relay membership tables. */
  createBuckets(table: string): string[];
  dropBuckets(table: string): string[];
  /** DDL of the fifth migration: key buckets become the only relay design (see `retireRowLeases`). */
  retireRowLeases(table: string): string[];
  unretireRowLeases(table: string): string[];
  /** DDL of the sixth migration: the due time of delayed messages and the indexes that find them. */
  createDelayedMessages(table: string): string[];
  dropDelayedMessages(table: string): string[];
  /**
   * An INSERT of one row that, when the primary key `key` already has a row, updates `update`
   * (columns) to the values it would have inserted.
   */
  upsert(table: string, columns: readonly string[], values: string, key: string, update: readonly string[]): string;
  /** DDL creating the consumer inbox table (consumer, message id, received time) and its index. */
  createInboxTable(table: string): string[];
}

/** @internal Parses the text `selectTime()` produced. */
export function parseDbTime(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  const text = String(value);
  return new Date(`${text.slice(0, 10)}T${text.slice(11, 23)}Z`);
}

/** @internal A Date as the UTC text `timeParam` reads. */
export function timeText(date: Date): string {
  return date.toISOString().slice(0, 23).replace('T', ' ');
}

/** @internal Number of per-key lock buckets on databases without advisory locks (MySQL/MariaDB). */
export const KEY_LOCK_BUCKETS = 4096;
