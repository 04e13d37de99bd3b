import { JSON_CONTENT_TYPE } from '../message/encode-message.js';
import type { MessageStatus } from '../message/message-status.enum.js';
import { parseDbTime, type SqlDialect } from './dialects/sql-dialect.interface.js';
import type { StoredMessage } from './stored-message.interface.js';

const PLAIN_COLUMNS = [
  'seq',
  'id',
  'producer_group',
  'topic',
  'message_key',
  'tags',
  'properties',
  'body',
  'content_type',
  'status',
  'check_immunity_ms',
  'check_count',
  'delivery_attempts',
  'last_error',
];
const TIME_COLUMNS = ['created_at', 'transaction_ended_at', 'next_check_at', 'next_attempt_at', 'deliver_at', 'delivered_at'];

/** @internal The select list that `toStoredMessage` reads, optionally qualified by a table alias. */
export function messageColumns(dialect: SqlDialect, alias?: string): string {
  const q = dialect.quote;
  const col = (c: string) => (alias ? `${alias}.${q(c)}` : q(c));
  return [
    ...PLAIN_COLUMNS.map(col),
    ...TIME_COLUMNS.map((c) => `${dialect.selectTime(col(c))} AS ${q(c)}`),
  ].join(', ');
}

/** @internal A stored message plus its row number, for the relay. */
export interface MessageRow extends StoredMessage {
  seq: number;
}

/**
 * @internal The columns the relay needs to publish (and the lease bookkeeping): no formatted
 * times but the born time, so a claim moves as little as possible.
 */
export function deliveryColumns(dialect: SqlDialect, alias?: string): string {
  const q = dialect.quote;
  const col = (c: string) => (alias ? `${alias}.${q(c)}` : q(c));
  return [...PLAIN_COLUMNS.map(col), `${dialect.selectTime(col('created_at'))} AS ${q('created_at')}`].join(', ');
}

/** @internal */
export function toStoredMessage(row: Record<string, unknown>): MessageRow {
  const bodyBytes = Buffer.isBuffer(row.body) ? row.body : Buffer.from(row.body as Uint8Array);
  const contentType = String(row.content_type);
  let decoded: { value: unknown } | undefined;
  return {
    seq: Number(row.seq),
    id: String(row.id),
    producerGroup: String(row.producer_group),
    topic: String(row.topic),
    key: row.message_key === null ? null : String(row.message_key),
    tags: row.tags ? String(row.tags).split(',') : [],
    properties: row.properties ? JSON.parse(String(row.properties)) : {},
    // Decoded on first use: the relay publishes the bytes and never needs the parsed body.
    get body(): unknown {
      decoded ??= { value: contentType === JSON_CONTENT_TYPE ? JSON.parse(bodyBytes.toString('utf8')) : bodyBytes };
      return decoded.value;
    },
    bodyBytes,
    contentType,
    status: row.status as MessageStatus,
    createdAt: parseDbTime(row.created_at) as Date,
    transactionEndedAt: parseDbTime(row.transaction_ended_at),
    checkImmunityMs: Number(row.check_immunity_ms),
    checkCount: Number(row.check_count),
    nextCheckAt: parseDbTime(row.next_check_at),
    deliveryAttempts: Number(row.delivery_attempts),
    nextAttemptAt: parseDbTime(row.next_attempt_at),
    lastError: row.last_error === null ? null : String(row.last_error),
    deliverAt: parseDbTime(row.deliver_at),
    deliveredAt: parseDbTime(row.delivered_at),
  };
}

/**
 * @internal A committed message as the relay reads it (the columns of `deliveryColumns`): the same
 * data as `toStoredMessage` gives, built for the relay's hot path. One class, so every row has one
 * shape; the body is decoded on first use by a getter on the prototype, not by a closure per row
 * (measured: bench/RESULTS.md, 2026-12-05 night). Never handed to users as it is (spread, it would
 * lose `body`): the public API goes through `publicMessage`.
 */
export class DeliveryRow implements MessageRow {
  readonly seq: number;
  readonly id: string;
  readonly producerGroup: string;
  readonly topic: string;
  readonly key: string | null;
  readonly tags: string[];
  readonly properties: Record<string, string>;
  readonly bodyBytes: Buffer;
  readonly contentType: string;
  readonly status: MessageStatus;
  readonly createdAt: Date;
  readonly transactionEndedAt = null;
  readonly checkImmunityMs: number;
  readonly checkCount: number;
  readonly nextCheckAt = null;
  readonly deliveryAttempts: number;
  readonly nextAttemptAt = null;
  readonly lastError: string | null;
  /** Not read by the relay (a message it reads is due). */
  readonly deliverAt = null;
  readonly deliveredAt = null;
  #decoded: { value: unknown } | undefined;

  constructor(row: Record<string, unknown>) {
    this.seq = Number(row.seq);
    this.id = String(row.id);
    this.producerGroup = String(row.producer_group);
    this.topic = String(row.topic);
    this.key = row.message_key === null ? null : String(row.message_key);
    this.tags = row.tags ? String(row.tags).split(',') : [];
    this.properties = row.properties ? JSON.parse(String(row.properties)) : {};
    this.bodyBytes = Buffer.isBuffer(row.body) ? row.body : Buffer.from(row.body as Uint8Array);
    this.contentType = String(row.content_type);
    this.status = row.status as MessageStatus;
    this.createdAt = parseDbTime(row.created_at) as Date;
    this.checkImmunityMs = Number(row.check_immunity_ms);
    this.checkCount = Number(row.check_count);
    this.deliveryAttempts = Number(row.delivery_attempts);
    this.lastError = row.last_error === null ? null : String(row.last_error);
  }

  get body(): unknown {
    this.#decoded ??= { value: this.contentType === JSON_CONTENT_TYPE ? JSON.parse(this.bodyBytes.toString('utf8')) : this.bodyBytes };
    return this.#decoded.value;
  }
}

/** @internal Strips the row number for the public API. */
export function publicMessage(row: MessageRow): StoredMessage {
  const { seq: _seq, body, ...rest } = row;
  return { ...rest, body };
}
