import type { EntityManager } from 'typeorm';
import { deliveryColumns, toStoredMessage, type MessageRow } from '../message-row.js';
import { SqlParams } from '../sql-params.js';
import { COMMITTED, DEAD, type RowClaimQueries, type RowClaimSql } from './row-claim.interface.js';

/**
 * @internal MySQL/MariaDB and SQLite: the claim in several statements, in a transaction of its own
 * so that the row locks of its reads hold until the lease is written. Candidates by a plain
 * (consistent, non-locking) read: on InnoDB, SKIP LOCKED also skips the rows the subqueries look
 * at, so a key's earlier messages locked by another relay's claim looked absent and a later
 * message of the key passed for its head (the fault soak on MariaDB saw two relays publish one
 * key at once, #1030 before #901). Then it locks the candidates that are still free, re-checking
 * them on their latest version, reads their keys' followers and writes the lease. SQLite has no
 * row locks and one writer: the same statements, without the locking clauses.
 */
export const lockingReadRowClaim: RowClaimQueries = {
  run: (runner, label, work) => runner.independent(label, work),

  async claim(manager, sql, { owner, token, limit, leaseMs, exhaustive }) {
    const { d, t } = sql;
    // First among the oldest committed messages only (see the PostgreSQL claim).
    const candidatesIn = (windowed: boolean): Promise<Array<{ seq: number | string }>> => {
      const p = new SqlParams(d);
      return manager.query(
        `SELECT r.seq FROM ${t} r WHERE ${sql.headCondition(d.now())}${windowed ? ` AND ${sql.inWindow(p, limit)}` : ''} ` +
          `ORDER BY r.seq LIMIT ${p.add(limit)}`,
        p.values,
      );
    };
    let candidates = await candidatesIn(true);
    const scannedAll = candidates.length === 0 && exhaustive;
    if (scannedAll) candidates = await candidatesIn(false);
    if (candidates.length === 0) return { token, messages: [], scannedAll };
    const heads = await select(
      manager,
      sql,
      (p) =>
        `SELECT ${deliveryColumns(d)} FROM ${t} WHERE ${p.inSeqs('seq', candidates.map((c) => Number(c.seq)))} AND status = ${COMMITTED} ` +
        `AND next_attempt_at <= ${d.now()} AND (lease_expires_at IS NULL OR lease_expires_at <= ${d.now()}) ORDER BY seq ${d.skipLocked}`,
    );
    if (heads.length === 0) return { token, messages: [], scannedAll };
    const messages = [...heads];
    const keys = [...new Set(heads.map((m) => m.key).filter((k): k is string => k !== null))];
    if (keys.length > 0 && heads.length < limit) {
      const firstDead = await firstDeadAfter(manager, sql, heads);
      const rows = await select(
        manager,
        sql,
        (p) =>
          // A follower leased by another relay (a batch in flight) blocks the rest of its key, as one not due does.
          `SELECT ${deliveryColumns(d)}, CASE WHEN next_attempt_at <= ${d.now()} ` +
          `AND (lease_expires_at IS NULL OR lease_expires_at <= ${d.now()}) THEN 1 ELSE 0 END AS due FROM ${t} ` +
          `WHERE status = ${COMMITTED} AND message_key IN (${p.list(keys)}) AND seq NOT IN (${p.list(heads.map((h) => h.seq))}) ` +
          `ORDER BY seq LIMIT ${p.add(limit - heads.length)} ${d.forUpdate}`,
        true,
      );
      // Keep each key's followers only up to the first one that is not due (or behind a DEAD
      // message that holds its key): never skip one.
      const blocked = new Set<string>();
      for (const row of rows as Array<MessageRow & { due: boolean }>) {
        if (blocked.has(row.key!) || !row.due || row.seq > (firstDead.get(row.key!) ?? Infinity)) {
          blocked.add(row.key!);
          continue;
        }
        messages.push(row);
      }
      messages.sort((a, b) => a.seq - b.seq);
    }
    const p = new SqlParams(d);
    await manager.query(
      `UPDATE ${t} SET lease_owner = ${p.add(owner)}, lease_token = ${p.add(token)}, ` +
        `lease_expires_at = ${d.nowPlusMs(p.add(leaseMs))} WHERE ${p.inSeqs('seq', messages.map((m) => m.seq))}`,
      p.values,
    );
    return { token, messages, scannedAll };
  },
};

/** `relay.onDead: 'hold'`: per key of `heads`, the lowest seq of a DEAD message after the head. */
async function firstDeadAfter(manager: EntityManager, sql: RowClaimSql, heads: readonly MessageRow[]): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  const keyed = heads.filter((h) => h.key !== null);
  if (!sql.holdDeadKeys || keyed.length === 0) return result;
  const p = new SqlParams(sql.d);
  const rows: Array<{ message_key: string; seq: number | string }> = await manager.query(
    `SELECT message_key, MIN(seq) AS seq FROM ${sql.t} WHERE status = ${DEAD} AND message_key IN (${p.list(keyed.map((h) => h.key))}) ` +
      `GROUP BY message_key`,
    p.values,
  );
  // In this mode no DEAD message comes before a head (it would not be one): every one found is after it.
  for (const row of rows) result.set(row.message_key, Number(row.seq));
  return result;
}

async function select(manager: EntityManager, sql: RowClaimSql, build: (p: SqlParams) => string, withDue = false): Promise<MessageRow[]> {
  const p = new SqlParams(sql.d);
  const rows: Array<Record<string, unknown>> = await manager.query(build(p), p.values);
  return rows.map((row) => {
    const message = toStoredMessage(row);
    return withDue ? Object.assign(message, { due: Number(row.due) === 1 }) : message;
  });
}
