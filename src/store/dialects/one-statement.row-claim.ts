import type { EntityManager } from 'typeorm';
import type { DeliveryClaim } from '../delivery.store.js';
import { deliveryColumns, toStoredMessage } from '../message-row.js';
import { SqlParams } from '../sql-params.js';
import { COMMITTED, type RowClaimQueries, type RowClaimRequest, type RowClaimSql } from './row-claim.interface.js';

/**
 * @internal PostgreSQL: the claim in one round trip and one row version per message, in
 * autocommit. The heads are locked with SKIP LOCKED, which makes their keys ours; their followers
 * (same key, later seq, up to the first one not due or leased by another relay) are read with one
 * bounded index scan per head; the lease is written by the UPDATE that returns the rows.
 */
export const oneStatementRowClaim: RowClaimQueries = {
  run: (runner, label, work) => runner.autocommit(label, work),

  async claim(manager, sql, request) {
    // First among the oldest committed messages only (bounded work whatever the backlog); the
    // whole queue only when that finds nothing (idle, or every head there blocked) and the caller
    // wants it (`exhaustive`: not for the relay's prefetch, which runs while a batch is in flight).
    const first = await claimOnce(manager, sql, request, true);
    if (first.messages.length > 0 || !request.exhaustive) return first;
    return { ...(await claimOnce(manager, sql, request, false)), scannedAll: true };
  },
};

/** `windowed`: heads only among the oldest committed messages (see `RowClaimSql.inWindow`). */
async function claimOnce(manager: EntityManager, sql: RowClaimSql, request: RowClaimRequest, windowed: boolean): Promise<DeliveryClaim> {
  const { d, t } = sql;
  const p = new SqlParams(d);
  const now = d.now();
  const limitParam = p.add(request.limit);
  const rest = `GREATEST(${limitParam}::int - (SELECT count(*) FROM heads)::int, 0)`;
  const statement =
    `WITH heads AS (SELECT r.seq, r.message_key FROM ${t} r WHERE ${sql.headCondition(now)}${windowed ? ` AND ${sql.inWindow(p, request.limit)}` : ''} ` +
    `ORDER BY r.seq LIMIT ${limitParam} FOR UPDATE SKIP LOCKED), ` +
    // Per head: the next `rest` messages of its key, cut at the first one not due or leased by
    // another relay (the UPDATE below would skip that one and take the ones after it: a gap in
    // the key, found by the fault suite's chaos test). Bounded by the claim, not by the backlog.
    `followers AS (SELECT z.seq FROM (SELECT f.seq, bool_or(f.blocked) OVER (PARTITION BY f.message_key ORDER BY f.seq) AS cut ` +
    `FROM heads h CROSS JOIN LATERAL (SELECT c.seq, c.message_key, ` +
    `COALESCE(c.next_attempt_at > ${now}, false) OR COALESCE(c.lease_expires_at > ${now}, false) AS blocked ` +
    `FROM ${t} c WHERE c.message_key = h.message_key AND c.status = ${COMMITTED} AND c.seq > h.seq${sql.deadBound('h.message_key', 'h.seq')} ` +
    `ORDER BY c.seq LIMIT ${rest}) f) z ` +
    `WHERE NOT z.cut ORDER BY z.seq LIMIT ${rest}) ` +
    // The heads' row locks make the key ours; the UPDATE re-checks each row's latest version.
    `UPDATE ${t} m SET lease_owner = ${p.add(request.owner)}, lease_token = ${p.add(request.token)}, ` +
    `lease_expires_at = ${d.nowPlusMs(p.add(request.leaseMs))} ` +
    `WHERE m.seq IN (SELECT seq FROM heads UNION ALL SELECT seq FROM followers) AND m.status = ${COMMITTED} ` +
    `AND (m.lease_expires_at IS NULL OR m.lease_expires_at <= ${now}) RETURNING ${deliveryColumns(d, 'm')}`;
  // Structured: for an UPDATE, TypeORM's plain query() returns [rows, count] on PostgreSQL.
  const result = await manager.queryRunner!.query(statement, p.values, true);
  const rows = result.records as Array<Record<string, unknown>>;
  return { token: request.token, messages: rows.map(toStoredMessage).sort((a, b) => a.seq - b.seq) };
}
