import type { EntityManager } from 'typeorm';
import { MessageNotFoundError } from '../errors/message-not-found.error.js';
import { TransactionAlreadyEndedError } from '../errors/transaction-already-ended.error.js';
import type { EncodedMessage } from '../message/encode-message.js';
import { endTransition } from '../message/end-transition.js';
import { MessageStatus } from '../message/message-status.enum.js';
import { parseDbTime, timeText, type SqlDialect } from './dialects/sql-dialect.interface.js';
import { messageColumns, publicMessage, toStoredMessage } from './message-row.js';
import { keyBucket } from './key-bucket.js';
import { hash32, SqlParams } from './sql-params.js';
import type { CheckAttempt, StoredMessage } from './stored-message.interface.js';

/** The outcome a message is first stored with (a committed message with a delay is stored DELAYED). */
export type InitialStatus = MessageStatus.HALF | MessageStatus.COMMITTED | MessageStatus.ROLLED_BACK;

/** The status a message was stored with. */
export type StoredStatus = InitialStatus | MessageStatus.DELAYED;

/**
 * @internal The SET list that commits a half message: COMMITTED and due now, or, with a due time
 * (a delayed message), DELAYED until then (the relay's timer makes it COMMITTED when it is due, also
 * when that has passed already).
 */
export function commitSet(d: SqlDialect): string {
  return (
    `status = CASE WHEN deliver_at IS NULL THEN '${MessageStatus.COMMITTED}' ELSE '${MessageStatus.DELAYED}' END, ` +
    `transaction_ended_at = ${d.now()}, next_check_at = NULL, next_attempt_at = COALESCE(deliver_at, ${d.now()})`
  );
}

/** What ending a half message did. */
export type EndResult = 'ended' | 'already-ended';

/**
 * @internal Writes and reads messages with plain SQL through the EntityManager it is given, so every
 * write happens in the caller's transaction. No TypeORM entity is involved: the user's DataSource
 * needs no registration, and each dialect gets the SQL it needs.
 */
export class MessageStore {
  readonly t: string;
  readonly checkTable: string;
  private readonly keyLockTable: string;
  private readonly lockClass: number;

  constructor(
    readonly dialect: SqlDialect,
    readonly tableName: string,
    /** PostgreSQL channel notified when a message becomes COMMITTED, or null. */
    readonly notifyChannel: string | null,
    /** Send the message INSERT as a prepared statement where the dialect can (decided at boot: see PreparedStatementsCheck). */
    public preparedStatements = false,
  ) {
    this.t = dialect.quote(tableName);
    this.checkTable = dialect.quote(`${tableName}_check`);
    this.keyLockTable = dialect.quote(`${tableName}_key_lock`);
    this.lockClass = hash32(`nestjs-transactional-message:${tableName}`);
  }

  /**
   * Inserts a message with its first status, in the transaction of `manager`. A message with a key
   * first takes that key's lock for the rest of the transaction, so that messages of one key are
   * numbered (seq) in the order their transactions commit; the relay delivers them in that order.
   */
  async insert(manager: EntityManager, message: EncodedMessage, outcome: InitialStatus): Promise<StoredStatus> {
    const d = this.dialect;
    const p = new SqlParams(d);
    // The due time of a delayed message: by the database's clock from now, or the instant given
    // (bound where it is written: '?' placeholders bind in text order).
    const { delay } = message;
    const deliverAt = () => (delay === null ? 'NULL' : 'at' in delay ? d.timeParam(p.add(timeText(delay.at))) : d.nowPlusMs(p.add(delay.delayMs)));
    const status = outcome === MessageStatus.COMMITTED && message.delay !== null ? MessageStatus.DELAYED : outcome;
    const values = [
      p.list([
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
      ]),
      d.now(),
      status === MessageStatus.HALF ? 'NULL' : d.now(),
      status === MessageStatus.HALF ? d.nowPlusMs(p.add(message.checkImmunityMs)) : 'NULL',
      status === MessageStatus.COMMITTED ? d.now() : status === MessageStatus.DELAYED ? deliverAt() : 'NULL',
      deliverAt(),
    ].join(', ');
    // Every message carries its key bucket (the fourth migration's column): the relays own buckets.
    const columns =
      'id, producer_group, topic, message_key, tags, properties, body, content_type, status, check_immunity_ms, ' +
      'created_at, transaction_ended_at, next_check_at, next_attempt_at, deliver_at, bucket';
    const allValues = `${values}, ${p.add(keyBucket(message.key, message.id))}`;
    const lock = message.key === null ? undefined : d.keyLock({ lockClass: this.lockClass, key: message.key, keyLockTable: this.keyLockTable }, p);
    for (const [statement, params] of lock?.before ?? []) await manager.query(statement, params);
    const sql = lock?.from ? `INSERT INTO ${this.t} (${columns}) SELECT ${allValues}${lock.from}` : `INSERT INTO ${this.t} (${columns}) VALUES (${allValues})`;
    // No NOTIFY here: it would serialise concurrent commits (see CommitNotifier). Prepared: parsed and
    // planned once per connection instead of on every call (measured in bench/RESULTS.md).
    await (this.preparedStatements ? d.queryPrepared(manager, sql, p.values) : manager.query(sql, p.values));
    return status;
  }

  /**
   * Ends a HALF (or parked) message's transaction (COMMIT or ROLLBACK) in the transaction of
   * `manager`. Idempotent and terminal: the same outcome again is a no-op ('already-ended'); the
   * opposite outcome throws TransactionAlreadyEndedError; an unknown id throws MessageNotFoundError.
   * The update is conditional on the status, so a concurrent check deciding the same message
   * cannot be overwritten.
   */
  async end(manager: EntityManager, id: string, requested: 'COMMIT' | 'ROLLBACK'): Promise<EndResult> {
    const d = this.dialect;
    const committed = requested === 'COMMIT';
    const p = new SqlParams(d);
    const outcome = committed ? commitSet(d) : `status = '${MessageStatus.ROLLED_BACK}', transaction_ended_at = ${d.now()}, next_check_at = NULL, next_attempt_at = NULL`;
    const sql =
      `UPDATE ${this.t} SET ${outcome}, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL ` +
      `WHERE id = ${p.add(id)} AND status IN ('${MessageStatus.HALF}', '${MessageStatus.CHECK_EXHAUSTED}')`;
    if ((await affected(manager, sql, p.values)) > 0) return 'ended';
    const current = await this.findStatus(manager, id);
    if (current === null) throw new MessageNotFoundError(id);
    if (endTransition(current, requested).kind === 'refuse') throw new TransactionAlreadyEndedError(id, requested, current);
    return 'already-ended';
  }

  /** DEAD → COMMITTED with a fresh attempt budget. Returns false unless the message was DEAD. */
  async replay(manager: EntityManager, id: string): Promise<boolean> {
    const d = this.dialect;
    const p = new SqlParams(d);
    const sql =
      `UPDATE ${this.t} SET status = '${MessageStatus.COMMITTED}', delivery_attempts = 0, next_attempt_at = ${d.now()}, ` +
      `last_error = NULL WHERE id = ${p.add(id)} AND status = '${MessageStatus.DEAD}'`;
    return (await affected(manager, sql, p.values)) > 0;
  }

  /** DEAD → DISCARDED: never delivered, its key goes on. Returns false unless the message was DEAD. */
  async discard(manager: EntityManager, id: string): Promise<boolean> {
    const p = new SqlParams(this.dialect);
    const sql =
      `UPDATE ${this.t} SET status = '${MessageStatus.DISCARDED}', next_attempt_at = NULL ` +
      `WHERE id = ${p.add(id)} AND status = '${MessageStatus.DEAD}'`;
    return (await affected(manager, sql, p.values)) > 0;
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
      `SELECT ${messageColumns(this.dialect)} FROM ${this.t} WHERE id = ${this.dialect.param(1)}`,
      [id],
    );
    return rows[0] ? publicMessage(toStoredMessage(rows[0])) : null;
  }

  async checkHistory(manager: EntityManager, id: string): Promise<CheckAttempt[]> {
    const d = this.dialect;
    const rows: Array<Record<string, unknown>> = await manager.query(
      `SELECT check_number, ${d.selectTime('checked_at')} AS checked_at, result, error, duration_ms, checker ` +
        `FROM ${this.checkTable} WHERE message_id = ${d.param(1)} ORDER BY check_number, seq`,
      [id],
    );
    return rows.map((row) => ({
      checkNumber: Number(row.check_number),
      checkedAt: parseDbTime(row.checked_at) as Date,
      result: row.result as CheckAttempt['result'],
      error: row.error === null ? null : String(row.error),
      durationMs: Number(row.duration_ms),
      checker: String(row.checker),
    }));
  }

}

/** @internal Runs an UPDATE/DELETE and returns how many rows it changed, on every driver. */
export async function affected(manager: EntityManager, sql: string, params: unknown[]): Promise<number> {
  if (!manager.queryRunner) throw new Error('the store needs an EntityManager bound to a transaction');
  const result = await manager.queryRunner.query(sql, params, true);
  return result.affected ?? 0;
}
