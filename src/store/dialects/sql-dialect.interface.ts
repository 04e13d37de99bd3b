/**
 * @internal The SQL that differs between databases. Everything that reads or compares a time uses
 * the database's clock through `now()` / `nowPlusMs()`, never the application's.
 */
export interface SqlDialect {
  readonly name: 'postgres' | 'mysql' | 'sqlite';
  /** SQLite has one connection per DataSource: the library serialises its own transactions on it. */
  readonly singleConnection: boolean;
  /** Row locks for claims, or '' where the database has none (SQLite runs one relay). */
  readonly skipLocked: string;
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
}

/** @internal Parses the text `selectTime()` produced. */
export function parseDbTime(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  const text = String(value);
  return new Date(`${text.slice(0, 10)}T${text.slice(11, 23)}Z`);
}

/** @internal Number of per-key lock buckets on databases without advisory locks (MySQL/MariaDB). */
export const KEY_LOCK_BUCKETS = 4096;
