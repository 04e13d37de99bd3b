import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';
import { affected, type MessageStore } from './message.store.js';
import { SqlParams } from './sql-params.js';

const DELAYED = `'${MessageStatus.DELAYED}'`;

/**
 * @internal The delayed messages' queries, on the sixth migration's indexes: which DELAYED messages
 * are due (by the database's clock), and when the next one is. A DELAYED message keeps its due time
 * in `next_attempt_at` (and `deliver_at`); made COMMITTED, it is due for the relay at once and
 * keeps its place in write order (seq).
 */
export class DelayedStore {
  constructor(private readonly store: MessageStore) {}

  /**
   * Makes at most `limit` of the DELAYED messages that are due COMMITTED, earliest due first; returns
   * how many. Run inside a transaction: the rows are locked (skipped when another relay holds them).
   */
  async promoteDue(manager: EntityManager, limit: number): Promise<number> {
    const d = this.store.dialect;
    const p = new SqlParams(d);
    const rows: Array<{ seq: number | string }> = await manager.query(
      `SELECT seq FROM ${this.store.t} WHERE status = ${DELAYED} AND next_attempt_at <= ${d.now()} ` +
        `ORDER BY next_attempt_at LIMIT ${p.add(limit)} ${d.skipLocked}`,
      p.values,
    );
    if (rows.length === 0) return 0;
    const u = new SqlParams(d);
    return affected(
      manager,
      `UPDATE ${this.store.t} SET status = '${MessageStatus.COMMITTED}' WHERE ${u.inSeqs('seq', rows.map((r) => Number(r.seq)))} AND status = ${DELAYED}`,
      u.values,
    );
  }

  /** Milliseconds until the earliest DELAYED message is due (0 or less: due now), or null when none waits. */
  async nextDueInMs(manager: EntityManager): Promise<number | null> {
    const d = this.store.dialect;
    const rows: Array<{ age: number | string | null }> = await manager.query(
      `SELECT ${d.ageMs('next_attempt_at')} AS age FROM ${this.store.t} WHERE status = ${DELAYED} ORDER BY next_attempt_at LIMIT 1`,
    );
    return rows.length === 0 || rows[0].age === null ? null : -Number(rows[0].age);
  }
}
