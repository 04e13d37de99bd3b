import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';
import type { TransactionStatus } from '../message/transaction-status.enum.js';
import { affected, commitSet, type MessageStore } from './message.store.js';
import { messageColumns, toStoredMessage, type MessageRow } from './message-row.js';
import { SqlParams } from './sql-params.js';

const HALF = `'${MessageStatus.HALF}'`;
const CLEAR_LEASE = 'lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL';

/** @internal What a check decided for one half message. */
export type CheckDecision =
  | { kind: 'commit' }
  | { kind: 'rollback' }
  | { kind: 'again'; inMs: number }
  | { kind: 'exhausted'; park: boolean; reason: string };

/** @internal A check attempt to record with its decision. */
export interface CheckRecord {
  checkNumber: number;
  result: TransactionStatus;
  error: string | null;
  durationMs: number;
  checker: string;
}

/**
 * @internal The transaction check's queries. A half message is leased while it is checked, so only
 * one instance checks it at a time; every decision is conditional on the message still being HALF
 * and still ours, so nothing decided (by a commit, a rollback or another check) is checked again or
 * overwritten; and a check is recorded only when its decision was applied.
 */
export class CheckStore {
  constructor(private readonly store: MessageStore) {}

  /**
   * Claims due half messages of `producerGroup` whose topic has a handler here (`topics` null: a
   * catch-all handler). Run inside a transaction.
   */
  async claim(
    manager: EntityManager,
    producerGroup: string,
    topics: readonly string[] | null,
    owner: string,
    token: string,
    limit: number,
    leaseMs: number,
  ): Promise<MessageRow[]> {
    const d = this.store.dialect;
    const t = this.store.t;
    const p = new SqlParams(d);
    const rows: Array<Record<string, unknown>> = await manager.query(
      `SELECT ${messageColumns(d)} FROM ${t} WHERE status = ${HALF} AND producer_group = ${p.add(producerGroup)} ` +
        `AND next_check_at <= ${d.now()} AND (lease_expires_at IS NULL OR lease_expires_at <= ${d.now()}) ` +
        (topics ? `AND topic IN (${p.list(topics)}) ` : '') +
        `ORDER BY next_check_at LIMIT ${p.add(limit)} ${d.skipLocked}`,
      p.values,
    );
    const messages = rows.map(toStoredMessage);
    if (messages.length > 0) {
      const u = new SqlParams(d);
      await manager.query(
        `UPDATE ${t} SET lease_owner = ${u.add(owner)}, lease_token = ${u.add(token)}, ` +
          `lease_expires_at = ${d.nowPlusMs(u.add(leaseMs))} WHERE seq IN (${u.list(messages.map((m) => m.seq))})`,
        u.values,
      );
    }
    return messages;
  }

  /**
   * Extends the check lease of one claimed message if it is still HALF and ours; false when it was
   * decided meanwhile or another instance took it over (its handler must not be called then).
   */
  async renew(manager: EntityManager, message: MessageRow, token: string, leaseMs: number): Promise<boolean> {
    const d = this.store.dialect;
    const p = new SqlParams(d);
    return (
      (await affected(
        manager,
        `UPDATE ${this.store.t} SET lease_expires_at = ${d.nowPlusMs(p.add(leaseMs))} ` +
          `WHERE seq = ${p.add(message.seq)} AND status = ${HALF} AND lease_token = ${p.add(token)}`,
        p.values,
      )) === 1
    );
  }

  /**
   * Gives claimed half messages back without a check: lease cleared, check count and due time
   * unchanged, so they are due again at once. Only those still HALF and ours.
   */
  async release(manager: EntityManager, messages: readonly MessageRow[], token: string): Promise<number> {
    if (messages.length === 0) return 0;
    const p = new SqlParams(this.store.dialect);
    return affected(
      manager,
      `UPDATE ${this.store.t} SET ${CLEAR_LEASE} WHERE ${p.inSeqs('seq', messages.map((m) => m.seq))} ` +
        `AND status = ${HALF} AND lease_token = ${p.add(token)}`,
      p.values,
    );
  }

  /** Applies a check's decision and records the attempt, if the message is still HALF and ours. */
  async decide(manager: EntityManager, message: MessageRow, token: string, decision: CheckDecision, record: CheckRecord): Promise<boolean> {
    const d = this.store.dialect;
    const p = new SqlParams(d);
    let set: string;
    switch (decision.kind) {
      case 'commit':
        set = commitSet(d);
        break;
      case 'rollback':
        set = `status = '${MessageStatus.ROLLED_BACK}', transaction_ended_at = ${d.now()}, next_check_at = NULL`;
        break;
      case 'again':
        set = `next_check_at = ${d.nowPlusMs(p.add(decision.inMs))}, last_error = ${p.add(record.error)}`;
        break;
      case 'exhausted':
        set =
          `status = ${p.add(decision.park ? MessageStatus.CHECK_EXHAUSTED : MessageStatus.ROLLED_BACK)}, ` +
          `transaction_ended_at = ${decision.park ? 'NULL' : d.now()}, next_check_at = NULL, last_error = ${p.add(decision.reason)}`;
        break;
    }
    const sql =
      `UPDATE ${this.store.t} SET ${set}, check_count = check_count + 1, ${CLEAR_LEASE} ` +
      `WHERE seq = ${p.add(message.seq)} AND status = ${HALF} AND lease_token = ${p.add(token)}`;
    if ((await affected(manager, sql, p.values)) === 0) return false;
    const r = new SqlParams(d);
    await manager.query(
      `INSERT INTO ${this.store.checkTable} (message_id, check_number, checked_at, result, error, duration_ms, checker) VALUES ` +
        `(${r.add(message.id)}, ${r.add(record.checkNumber)}, ${d.now()}, ${r.add(record.result)}, ${r.add(record.error)}, ` +
        `${r.add(record.durationMs)}, ${r.add(record.checker.slice(0, 255))})`,
      r.values,
    );
    return true;
  }

  /**
   * Applies `onExhausted` to half messages of `producerGroup` older than `maxAgeMs`, whether or
   * not a handler ever answered (or exists). Returns how many it ended.
   */
  async expire(manager: EntityManager, producerGroup: string, maxAgeMs: number, park: boolean, limit: number): Promise<number> {
    const d = this.store.dialect;
    const t = this.store.t;
    const p = new SqlParams(d);
    const rows: Array<{ seq: number | string }> = await manager.query(
      `SELECT seq FROM ${t} WHERE status = ${HALF} AND producer_group = ${p.add(producerGroup)} ` +
        `AND created_at <= ${d.nowPlusMs(p.add(-maxAgeMs))} AND (lease_expires_at IS NULL OR lease_expires_at <= ${d.now()}) ` +
        `ORDER BY seq LIMIT ${p.add(limit)} ${d.skipLocked}`,
      p.values,
    );
    if (rows.length === 0) return 0;
    const u = new SqlParams(d);
    return affected(
      manager,
      `UPDATE ${t} SET status = ${u.add(park ? MessageStatus.CHECK_EXHAUSTED : MessageStatus.ROLLED_BACK)}, ` +
        `transaction_ended_at = ${park ? 'NULL' : d.now()}, next_check_at = NULL, ` +
        `last_error = ${u.add(`no decision within check.maxAgeMs (${maxAgeMs} ms)`)}, ${CLEAR_LEASE} ` +
        `WHERE seq IN (${u.list(rows.map((r) => Number(r.seq)))}) AND status = ${HALF}`,
      u.values,
    );
  }

  /** Topics of HALF messages of `producerGroup`, for the boot-time warning about missing handlers. */
  async halfTopics(manager: EntityManager, producerGroup: string): Promise<string[]> {
    const d = this.store.dialect;
    const rows: Array<{ topic: string }> = await manager.query(
      `SELECT DISTINCT topic FROM ${this.store.t} WHERE status = ${HALF} AND producer_group = ${d.param(1)}`,
      [producerGroup],
    );
    return rows.map((r) => r.topic);
  }
}
