import type { IsolationLevel } from './isolation-level.js';

/** A value given as is, or computed from the method's arguments and its result. */
export type FromCall<TArgs extends unknown[], TResult, TValue> = TValue | ((args: TArgs, result: TResult) => TValue);

/**
 * Options of `@TransactionalMessage`. Callbacks receive the method's arguments (as an array)
 * and what it returned: `key: ([dto]) => dto.orderId`.
 */
export interface TransactionalMessageOptions<TArgs extends unknown[] = any[], TResult = any> {
  /** Kafka topic of the message. Required; validated when the class is defined. */
  topic: string;
  /** Message key (Kafka record key; per-key order). Default: no key. */
  key?: FromCall<TArgs, TResult, string | undefined>;
  /** Tags for consumer-side filtering. Default: none. */
  tags?: FromCall<TArgs, TResult, string | readonly string[] | undefined>;
  /** User properties, sent as Kafka headers. Default: none. */
  properties?: FromCall<TArgs, TResult, Record<string, string> | undefined>;
  /**
   * The message body: JSON-serialisable, or a Buffer/Uint8Array for raw bytes.
   * Default: what the method returned.
   */
  body?: (args: TArgs, result: TResult) => unknown;
  /** Check immunity of the message in ms when it ends UNKNOWN. Default: the module's `checkImmunityMs`. */
  checkImmunityMs?: number;
  /**
   * A delayed message: published no sooner than this many ms after it is stored (by the database's
   * clock), 0 to 365 days. While it waits, the later messages of its key go out without it (see the
   * docs/guide.md, *Delayed messages*). Not with `deliverAt`. Default: no delay.
   */
  delayMs?: FromCall<TArgs, TResult, number | undefined>;
  /**
   * A delayed message: published no sooner than this instant (by the database's clock), at most 365
   * days ahead; an instant already past is due at once. Not with `delayMs`. Default: no delay.
   */
  deliverAt?: FromCall<TArgs, TResult, Date | undefined>;
  /**
   * Refuse to run (TransactionRequiredError) unless the caller already has a transaction to join.
   * Default `false`: join one if there is one, else open one.
   */
  mandatory?: boolean;
  /** Isolation level of the transaction the method opens. Ignored, with a warning, when it joins one. */
  isolationLevel?: IsolationLevel;
  /**
   * The module registration that serves this method (`forRoot({ name })`): its DataSource, message
   * table, producer group and relay. Default `'default'` (a registration without `name`).
   */
  instance?: string;
}
