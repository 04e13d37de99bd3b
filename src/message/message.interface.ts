/**
 * A message to send transactionally. The body is JSON unless it is a `Buffer`/`Uint8Array`,
 * which is sent as raw bytes.
 */
export interface MessageInput<TBody = unknown> {
  /** Kafka topic: 1-249 characters of `a-z A-Z 0-9 . _ -`, not `.` or `..`. */
  topic: string;
  /**
   * Message key: the Kafka record key. Messages with the same key are delivered in the order they
   * were written. Optional; at most 255 characters.
   */
  key?: string;
  /** Tags for consumer-side filtering (RocketMQ style). Each 1-128 characters, without `|`, `,` or spaces. */
  tags?: string | readonly string[];
  /** User properties, carried as Kafka headers. Names must not start with `tm-` (reserved). */
  properties?: Readonly<Record<string, string>>;
  /** The payload. */
  body: TBody;
  /**
   * How long after it is stored a HALF message is first checked, in milliseconds.
   * Defaults to the module's `checkImmunityMs` (10 000).
   */
  checkImmunityMs?: number;
  /**
   * A delayed message: not published until this many milliseconds after it is stored (by the
   * database's clock), 0 to 365 days. While it waits, later messages of its key go out without it;
   * see docs/guide.md, *Delayed messages*. Not with `deliverAt`.
   */
  delayMs?: number;
  /**
   * A delayed message: not published before this instant (compared with the database's clock), at
   * most 365 days ahead; an instant already past is due at once. Not with `delayMs`.
   */
  deliverAt?: Date;
}
