import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';
import { affected, type MessageStore } from './message.store.js';
import { SqlParams } from './sql-params.js';

/**
 * @internal Deletes finished messages (DELIVERED, ROLLED_BACK) and their check history after the
 * retention, in small batches. The statements name the finished status they delete, so a HALF,
 * COMMITTED, DEAD or parked message is never touched.
 */
export class RetentionStore {
  constructor(private readonly store: MessageStore) {}

  /** Deletes at most `limit` messages of one finished status; returns how many. Run inside a transaction. */
  async prune(
    manager: EntityManager,
    status: MessageStatus.DELIVERED | MessageStatus.ROLLED_BACK,
    retentionMs: number,
    limit: number,
  ): Promise<number> {
    const d = this.store.dialect;
    const t = this.store.t;
    const finishedAt = status === MessageStatus.DELIVERED ? 'delivered_at' : 'transaction_ended_at';
    const p = new SqlParams(d);
    const rows: Array<{ seq: number | string; id: string }> = await manager.query(
      `SELECT seq, id FROM ${t} WHERE status = ${p.add(status)} AND ${finishedAt} <= ${d.nowPlusMs(p.add(-retentionMs))} ` +
        `ORDER BY ${finishedAt} LIMIT ${p.add(limit)} ${d.skipLocked}`,
      p.values,
    );
    if (rows.length === 0) return 0;
    const c = new SqlParams(d);
    await manager.query(`DELETE FROM ${this.store.checkTable} WHERE message_id IN (${c.list(rows.map((r) => r.id))})`, c.values);
    const m = new SqlParams(d);
    return affected(
      manager,
      `DELETE FROM ${t} WHERE seq IN (${m.list(rows.map((r) => Number(r.seq)))}) AND status = ${m.add(status)}`,
      m.values,
    );
  }
}
