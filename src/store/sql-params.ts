/** @internal What SqlParams needs of a dialect (every SqlDialect has it). */
export interface ParamStyle {
  param(n: number): string;
  nowPlusMs(sql: string): string;
  inBigints(column: string, values: readonly number[], p: SqlParams): string;
}

/**
 * @internal Collects parameters while a statement is written left to right, so the same code
 * yields `$1, $2` (PostgreSQL) or `?, ?` (MySQL, SQLite) in the right order.
 */
export class SqlParams {
  readonly values: unknown[] = [];

  constructor(private readonly dialect: ParamStyle) {}

  add(value: unknown): string {
    this.values.push(value);
    return this.dialect.param(this.values.length);
  }

  /** The database's current time plus `ms` milliseconds, bound here. */
  nowPlusMs(ms: number): string {
    return this.dialect.nowPlusMs(this.add(ms));
  }

  list(values: readonly unknown[]): string {
    return values.map((value) => this.add(value)).join(', ');
  }

  /**
   * `column IN (...)` for row numbers: one array parameter on PostgreSQL (a batch of 500 is one
   * bind, not 500), a placeholder list elsewhere.
   */
  inSeqs(column: string, seqs: readonly number[]): string {
    return this.dialect.inBigints(column, seqs, this);
  }
}

/** @internal 32-bit FNV-1a of a string, as a signed int32 (PostgreSQL advisory lock keys are int4). */
export function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}
