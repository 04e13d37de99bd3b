import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';

const COMMITTED = `'${MessageStatus.COMMITTED}'`;
import { affected, type MessageStore } from './message.store.js';
import type { MessageRow } from './message-row.js';
import type { SqlDialect } from './dialects/sql-dialect.interface.js';
import { SqlParams } from './sql-params.js';

/**
 * @internal How the background work runs a store's statements: one statement in autocommit, or
 * several in a transaction of their own (BackgroundWork).
 */
export interface StatementRunner {
  autocommit<T>(label: string, work: (manager: EntityManager) => Promise<T>): Promise<T>;
  independent<T>(label: string, work: (manager: EntityManager) => Promise<T>): Promise<T>;
}

/** @internal The SET list of a published message's mark (whoever owns it). */
export function deliveredSet(d: SqlDialect): string {
  return `status = '${MessageStatus.DELIVERED}', delivered_at = ${d.now()}, delivery_attempts = delivery_attempts + 1, next_attempt_at = NULL, last_error = NULL`;
}

/**
 * @internal Records that `rows` were published: marked DELIVERED, or with `relay.retentionMs: 0`
 * deleted (with the check history of those that were checked) in the same statement count.
 * `where(seqs)` adds the ownership's fence to the row condition; `p` holds its parameters.
 */
export async function finishDelivered(
  manager: EntityManager,
  store: MessageStore,
  deleteDelivered: boolean,
  rows: readonly MessageRow[],
  where: (condition: string) => string,
  p: SqlParams,
  extraSet = '',
): Promise<number> {
  if (rows.length === 0) return 0;
  const d = store.dialect;
  const condition = where(`${p.inSeqs('seq', rows.map((r) => r.seq))} AND status = ${COMMITTED}`);
  if (!deleteDelivered) {
    return affected(manager, `UPDATE ${store.t} SET ${deliveredSet(d)}${extraSet ? `, ${extraSet}` : ''} WHERE ${condition}`, p.values);
  }
  const checked = rows.filter((r) => r.checkCount > 0).map((r) => r.id);
  if (checked.length === 0) return affected(manager, `DELETE FROM ${store.t} WHERE ${condition}`, p.values);
  // The check history goes with its message, in one transaction, and only where the fenced delete
  // took the message: a message still owned by another relay keeps its history.
  return manager.transaction(async (m) => {
    const deleted = await affected(m, `DELETE FROM ${store.t} WHERE ${condition}`, p.values);
    const c = new SqlParams(d);
    await m.query(
      `DELETE FROM ${store.checkTable} WHERE message_id IN (${c.list(checked)}) ` +
        `AND NOT EXISTS (SELECT 1 FROM ${store.t} x WHERE x.id = ${store.checkTable}.message_id)`,
      c.values,
    );
    return deleted;
  });
}

/** @internal The SET list of a failed attempt: retried after `retryInMs`, or DEAD when `dead`. */
export function failedSet(p: SqlParams, error: string, dead: boolean, retryInMs: number): string {
  const next = dead ? `status = '${MessageStatus.DEAD}', next_attempt_at = NULL` : `next_attempt_at = ${p.nowPlusMs(retryInMs)}`;
  return `${next}, delivery_attempts = delivery_attempts + 1, last_error = ${p.add(error.slice(0, 4000))}`;
}
