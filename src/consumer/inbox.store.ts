import type { EntityManager } from 'typeorm';
import type { SqlDialect } from '../store/dialects/sql-dialect.interface.js';
import { affected } from '../store/message.store.js';
import { SqlParams } from '../store/sql-params.js';

/**
 * @internal The inbox table: one row per (consumer, message id) whose effect was committed.
 * Recording is an insert that does nothing on a duplicate (and waits for a concurrent insert of
 * the same pair to commit or roll back), so it never aborts the handler's transaction.
 */
export class InboxStore {
  readonly t: string;

  constructor(
    readonly dialect: SqlDialect,
    readonly tableName: string,
  ) {
    this.t = dialect.quote(tableName);
  }

  /** Records the message for the consumer; false when it was already recorded (a redelivery). */
  async record(manager: EntityManager, consumer: string, messageId: string): Promise<boolean> {
    const d = this.dialect;
    const p = new SqlParams(d);
    const values = `(${p.add(consumer)}, ${p.add(messageId)}, ${d.now()})`;
    const sql = d.insertIgnore(this.t, 'consumer, message_id, received_at', values);
    return (await affected(manager, sql, p.values)) === 1;
  }

  async prune(manager: EntityManager, retentionMs: number, limit: number): Promise<number> {
    const d = this.dialect;
    const p = new SqlParams(d);
    const rows: Array<{ consumer: string; message_id: string }> = await manager.query(
      `SELECT consumer, message_id FROM ${this.t} WHERE received_at <= ${d.nowPlusMs(p.add(-retentionMs))} ` +
        `ORDER BY received_at LIMIT ${p.add(limit)} ${d.skipLocked}`,
      p.values,
    );
    if (rows.length === 0) return 0;
    const del = new SqlParams(d);
    const pairs = rows.map((r) => `(consumer = ${del.add(r.consumer)} AND message_id = ${del.add(r.message_id)})`).join(' OR ');
    return affected(manager, `DELETE FROM ${this.t} WHERE ${pairs}`, del.values);
  }

  async exists(manager: EntityManager): Promise<void> {
    await manager.query(`SELECT 1 FROM ${this.t} WHERE 1 = 0`);
  }
}
