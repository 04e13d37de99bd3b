import type { EntityManager } from 'typeorm';
import { MessageNotFoundError } from '../errors/message-not-found.error.js';
import { TransactionAlreadyEndedError } from '../errors/transaction-already-ended.error.js';
import { JSON_CONTENT_TYPE, type EncodedMessage } from '../message/encode-message.js';
import { endTransition } from '../message/end-transition.js';
import { MessageStatus } from '../message/message-status.enum.js';
import type { SqlDialect } from './dialects/sql-dialect.interface.js';
import { parseDbTime } from './dialects/sql-dialect.interface.js';
import type { StoredMessage } from './stored-message.interface.js';

/** The status a message is first stored with. */
export type InitialStatus = MessageStatus.HALF | MessageStatus.COMMITTED | MessageStatus.ROLLED_BACK;

/** What ending a half message did. */
export type EndResult = 'ended' | 'already-ended';

const TIME_COLUMNS = [
  'created_at',
  'transaction_ended_at',
  'next_check_at',
  'next_attempt_at',
  'delivered_at',
] as const;

/**
 * @internal Reads and writes the message table with plain SQL through the EntityManager it is
 * given, so every write happens in the caller's transaction. No TypeORM entity is involved: the
 * user's DataSource needs no registration, and each dialect gets the SQL it needs.
 */
export class MessageStore {
  private readonly t: string;
  private readonly selectList: string;

  constructor(
    readonly dialect: SqlDialect,
    readonly tableName: string,
  ) {
    const q = dialect.quote;
    this.t = q(tableName);
    const plain = ['id', 'producer_group', 'topic', 'message_key', 'tags', 'properties', 'body', 'content_type',
      'status', 'check_immunity_ms', 'check_count', 'delivery_attempts', 'last_error'].map(q);
    const times = TIME_COLUMNS.map((c) => `${dialect.selectTime(q(c))} AS ${q(c)}`);
    this.selectList = [...plain, ...times].join(', ');
  }

  /** Inserts a message with its first status, in the transaction of `manager`. */
  async insert(manager: EntityManager, message: EncodedMessage, status: InitialStatus): Promise<void> {
    const d = this.dialect;
    const p = (i: number) => d.param(i);
    const ended = status === MessageStatus.HALF ? 'NULL' : d.now();
    const half = status === MessageStatus.HALF;
    // Positional placeholders ('?') cannot be reused, so the immunity is passed twice.
    const nextCheck = half ? d.nowPlusMs(p(11)) : 'NULL';
    const nextAttempt = status === MessageStatus.COMMITTED ? d.now() : 'NULL';
    const sql =
      `INSERT INTO ${this.t} (id, producer_group, topic, message_key, tags, properties, body, content_type, status, ` +
      `check_immunity_ms, created_at, transaction_ended_at, next_check_at, next_attempt_at) VALUES ` +
      `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ` +
      `${d.now()}, ${ended}, ${nextCheck}, ${nextAttempt})`;
    await manager.query(sql, [
      message.id,
      message.producerGroup,
      message.topic,
      message.key,
      message.tags.length ? message.tags.join(',') : null,
      Object.keys(message.properties).length ? JSON.stringify(message.properties) : null,
      message.body,
      message.contentType,
      status,
      message.checkImmunityMs,
      ...(half ? [message.checkImmunityMs] : []),
    ]);
  }

  /**
   * Ends a HALF message's transaction (COMMIT or ROLLBACK) in the transaction of `manager`.
   * Idempotent and terminal: the same outcome again is a no-op ('already-ended'); the opposite
   * outcome throws TransactionAlreadyEndedError; an unknown id throws MessageNotFoundError.
   * The update is conditional on status HALF, so a concurrent check deciding the same message
   * cannot be overwritten.
   */
  async end(manager: EntityManager, id: string, requested: 'COMMIT' | 'ROLLBACK'): Promise<EndResult> {
    const d = this.dialect;
    const committed = requested === 'COMMIT';
    const sql =
      `UPDATE ${this.t} SET status = ${d.param(1)}, transaction_ended_at = ${d.now()}, next_check_at = NULL, ` +
      `next_attempt_at = ${committed ? d.now() : 'NULL'} WHERE id = ${d.param(2)} AND status = 'HALF'`;
    const result = await runner(manager).query(
      sql,
      [committed ? MessageStatus.COMMITTED : MessageStatus.ROLLED_BACK, id],
      true,
    );
    if ((result.affected ?? 0) > 0) return 'ended';
    const current = await this.findStatus(manager, id);
    if (current === null) throw new MessageNotFoundError(id);
    const transition = endTransition(current, requested);
    if (transition.kind === 'refuse') throw new TransactionAlreadyEndedError(id, requested, current);
    return 'already-ended';
  }

  async findStatus(manager: EntityManager, id: string): Promise<MessageStatus | null> {
    const rows: Array<{ status: MessageStatus }> = await manager.query(
      `SELECT status FROM ${this.t} WHERE id = ${this.dialect.param(1)}`,
      [id],
    );
    return rows[0]?.status ?? null;
  }

  async find(manager: EntityManager, id: string): Promise<StoredMessage | null> {
    const rows: Array<Record<string, unknown>> = await manager.query(
      `SELECT ${this.selectList} FROM ${this.t} WHERE id = ${this.dialect.param(1)}`,
      [id],
    );
    return rows[0] ? toStoredMessage(rows[0]) : null;
  }
}

function runner(manager: EntityManager) {
  if (!manager.queryRunner) {
    throw new Error('MessageStore.end() needs an EntityManager bound to a transaction');
  }
  return manager.queryRunner;
}

/** @internal */
export function toStoredMessage(row: Record<string, unknown>): StoredMessage {
  const bodyBytes = Buffer.isBuffer(row.body) ? row.body : Buffer.from(row.body as Uint8Array);
  const contentType = String(row.content_type);
  return {
    id: String(row.id),
    producerGroup: String(row.producer_group),
    topic: String(row.topic),
    key: row.message_key === null ? null : String(row.message_key),
    tags: row.tags ? String(row.tags).split(',') : [],
    properties: row.properties ? JSON.parse(String(row.properties)) : {},
    body: contentType === JSON_CONTENT_TYPE ? JSON.parse(bodyBytes.toString('utf8')) : bodyBytes,
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
    deliveredAt: parseDbTime(row.delivered_at),
  };
}
