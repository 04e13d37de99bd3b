import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';
import { affected, type MessageStore } from './message.store.js';
import { messageColumns, toStoredMessage, type MessageRow } from './message-row.js';
import { SqlParams } from './sql-params.js';

/** @internal What an operator's query narrows messages of one status to. */
export interface AdminFilter {
  topic?: string;
  key?: string;
  producerGroup?: string;
  /** Stored at least this long ago (database clock). */
  olderThanMs?: number;
}

/**
 * @internal Operators' queries. Each reads one status at a time, so it runs on that status's index
 * (COMMITTED: `<table>_committed_seq_idx`; HALF, DEAD, parked, discarded: `<table>_operator_idx`;
 * MySQL: `<table>_status_seq_idx`), in write order, and never walks the delivered history.
 */
export class AdminStore {
  constructor(private readonly store: MessageStore) {}

  private where(p: SqlParams, status: MessageStatus, filter: AdminFilter): string {
    const d = this.store.dialect;
    const parts = [`status = ${p.add(status)}`];
    if (filter.topic !== undefined) parts.push(`topic = ${p.add(filter.topic)}`);
    if (filter.key !== undefined) parts.push(`message_key = ${p.add(filter.key)}`);
    if (filter.producerGroup !== undefined) parts.push(`producer_group = ${p.add(filter.producerGroup)}`);
    if (filter.olderThanMs !== undefined) parts.push(`created_at <= ${d.nowPlusMs(p.add(-filter.olderThanMs))}`);
    return parts.join(' AND ');
  }

  /** Messages of `status` after row `afterSeq`, oldest first. */
  async list(manager: EntityManager, status: MessageStatus, filter: AdminFilter, afterSeq: number, limit: number): Promise<MessageRow[]> {
    const p = new SqlParams(this.store.dialect);
    const where = this.where(p, status, filter);
    const rows: Array<Record<string, unknown>> = await manager.query(
      `SELECT seq, ${messageColumns(this.store.dialect)} FROM ${this.store.t} WHERE ${where} AND seq > ${p.add(afterSeq)} ORDER BY seq LIMIT ${p.add(limit)}`,
      p.values,
    );
    return rows.map(toStoredMessage);
  }

  async count(manager: EntityManager, status: MessageStatus, filter: AdminFilter): Promise<number> {
    const p = new SqlParams(this.store.dialect);
    const [row]: Array<{ n: number | string }> = await manager.query(
      `SELECT COUNT(*) AS n FROM ${this.store.t} WHERE ${this.where(p, status, filter)}`,
      p.values,
    );
    return Number(row?.n ?? 0);
  }

  /** Age in ms of the oldest message of `status` (by write order), or null when there is none. */
  async oldestAgeMs(manager: EntityManager, status: MessageStatus): Promise<number | null> {
    const d = this.store.dialect;
    const p = new SqlParams(d);
    const [row]: Array<{ age: number | string }> = await manager.query(
      `SELECT ${d.ageMs('created_at')} AS age FROM ${this.store.t} WHERE status = ${p.add(status)} ORDER BY seq LIMIT 1`,
      p.values,
    );
    return row ? Math.max(0, Math.round(Number(row.age))) : null;
  }

  /** DEAD → COMMITTED with a fresh attempt budget, for up to `limit` of those `filter` selects. */
  async replayDead(manager: EntityManager, filter: AdminFilter, limit: number): Promise<number> {
    const seqs = (await this.list(manager, MessageStatus.DEAD, filter, 0, limit)).map((r) => r.seq);
    if (seqs.length === 0) return 0;
    const d = this.store.dialect;
    const p = new SqlParams(d);
    return affected(
      manager,
      `UPDATE ${this.store.t} SET status = '${MessageStatus.COMMITTED}', delivery_attempts = 0, next_attempt_at = ${d.now()}, last_error = NULL ` +
        `WHERE ${p.inSeqs('seq', seqs)} AND status = '${MessageStatus.DEAD}'`,
      p.values,
    );
  }

  /** Deletes up to `limit` messages of `status` that `filter` selects, with their check history. */
  async purge(manager: EntityManager, status: MessageStatus, filter: AdminFilter, limit: number): Promise<number> {
    const rows = await this.list(manager, status, filter, 0, limit);
    if (rows.length === 0) return 0;
    const d = this.store.dialect;
    const c = new SqlParams(d);
    await manager.query(`DELETE FROM ${this.store.checkTable} WHERE message_id IN (${c.list(rows.map((r) => r.id))})`, c.values);
    const p = new SqlParams(d);
    return affected(manager, `DELETE FROM ${this.store.t} WHERE ${p.inSeqs('seq', rows.map((r) => r.seq))} AND status = ${p.add(status)}`, p.values);
  }

  /**
   * Records an operator's commit or rollback in the message's check history (checker
   * `operator <who>`, numbered after its last check), so the history says who decided it.
   */
  async recordOperatorDecision(manager: EntityManager, id: string, result: 'COMMIT' | 'ROLLBACK', operator: string): Promise<void> {
    const d = this.store.dialect;
    const p = new SqlParams(d);
    await manager.query(
      `INSERT INTO ${this.store.checkTable} (message_id, check_number, checked_at, result, error, duration_ms, checker) ` +
        `SELECT id, check_count + 1, ${d.now()}, ${p.add(result)}, NULL, 0, ${p.add(`operator ${operator}`.slice(0, 255))} FROM ${this.store.t} WHERE id = ${p.add(id)}`,
      p.values,
    );
  }
}
