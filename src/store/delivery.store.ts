import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';
import type { OutgoingMessage } from '../publisher/message-publisher.interface.js';
import { affected, type MessageStore } from './message.store.js';
import type { MessageRow } from './message-row.js';
import { COMMITTED, RowClaimSql } from './dialects/row-claim.interface.js';
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

/** @internal A batch of committed messages claimed for publishing, under one lease token. */
export interface DeliveryClaim {
  token: string;
  /** In seq order; the messages of one key form an unbroken prefix of that key's queue. */
  messages: MessageRow[];
  /** The claim walked the whole queue: the oldest messages had nothing to claim. */
  scannedAll?: boolean;
  /** When the claim's hold was last confirmed in the database (performance.now()), if before the claim. */
  confirmedAt?: number;
  /**
   * The relay's cache of what it builds from each message once: the record it publishes and that
   * record's size. Lives and dies with the claim (a `WeakMap` per row cost the relay 6 % of its CPU).
   */
  records?: Map<MessageRow, { message: OutgoingMessage; bytes: number }>;
}

const CLEAR_LEASE = 'lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL';

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

/**
 * @internal The relay's claim and mark queries for delivery.
 *
 * Per key, only the queue's head (its lowest-seq COMMITTED message) can start a claim, and it is
 * locked with SKIP LOCKED: whoever holds it holds the key. The claim then takes the head's
 * followers of the same key in seq order. A key whose head is leased, backing off or locked by
 * another relay is left alone, and `contestedKeys` finds a key another batch holds part of, or
 * of which the claim skipped a message (a late commit, two claims at the same moment), so one
 * relay at a time publishes a key, in order, and a failing message holds back only its own key.
 * Under `relay.onDead: 'hold'`, a DEAD message holds back the rest of its key too. Every later
 * write is fenced by the lease token.
 */
export class DeliveryStore {
  constructor(
    private readonly store: MessageStore,
    /** `relay.onDead: 'hold'`: a DEAD message holds back the later messages of its key. */
    holdDeadKeys: boolean,
    /** `relay.retentionMs: 0`: a delivered message is deleted by its mark. */
    private readonly deleteDelivered = false,
  ) {
    this.claimSql = new RowClaimSql(store.t, store.dialect, holdDeadKeys);
  }

  private readonly claimSql: RowClaimSql;

  private get d() {
    return this.store.dialect;
  }

  /**
   * Claims through `runner`, which this store tells how: the dialect's row claim knows whether
   * its statements run in autocommit or in a transaction of their own. The caller does not.
   */
  claimWith(
    runner: StatementRunner,
    label: string,
    owner: string,
    token: string,
    limit: number,
    leaseMs: number,
    exhaustive = true,
  ): Promise<DeliveryClaim> {
    return this.d.rowClaim.run(runner, label, (m) => this.claim(m, owner, token, limit, leaseMs, exhaustive));
  }

  /**
   * Claims up to `limit` due committed messages for `leaseMs` with the dialect's row claim
   * (`dialects/*.row-claim.ts`): run it as `claimWith` does, or inside a transaction.
   */
  claim(manager: EntityManager, owner: string, token: string, limit: number, leaseMs: number, exhaustive = true): Promise<DeliveryClaim> {
    return this.d.rowClaim.claim(manager, this.claimSql, { owner, token, limit, leaseMs, exhaustive });
  }

  /**
   * Extends the lease of the claim's messages that are still ours and returns their seqs. A
   * message another relay took over (a new token) is not ours anymore and must not be published.
   */
  async renew(manager: EntityManager, claim: DeliveryClaim, seqs: number[], leaseMs: number): Promise<Set<number>> {
    const { d } = this;
    const p = new SqlParams(d);
    await manager.query(
      `UPDATE ${this.store.t} SET lease_expires_at = ${d.nowPlusMs(p.add(leaseMs))} ` +
        `WHERE ${p.inSeqs('seq', seqs)} AND lease_token = ${p.add(claim.token)} AND status = ${COMMITTED}`,
      p.values,
    );
    const q = new SqlParams(d);
    const rows: Array<{ seq: number | string }> = await manager.query(
      `SELECT seq FROM ${this.store.t} WHERE ${q.inSeqs('seq', seqs)} AND lease_token = ${q.add(claim.token)} AND status = ${COMMITTED}`,
      q.values,
    );
    return new Set(rows.map((r) => Number(r.seq)));
  }

  /**
   * The keys of `claim` that this batch must leave, read after the claim with a fresh view:
   * - a gap: a committed message of the key, older than the claim's last one of the key, that the
   *   claim does not hold (a concurrent claim leased it between this claim's read and its write);
   *   publishing the messages after it would put them first;
   * - the key's next committed message after the claim's last one is leased by another relay: a
   *   message committed late (older seq) became the key's head while the key was in another batch.
   * The caller releases its messages of those keys, so one relay at a time publishes a key, in
   * order. Two index probes per key, whatever the key's backlog.
   */
  async contestedKeys(manager: EntityManager, claim: DeliveryClaim): Promise<Set<string>> {
    const last = new Map<string, number>();
    for (const m of claim.messages) if (m.key !== null) last.set(m.key, Math.max(m.seq, last.get(m.key) ?? 0));
    if (last.size === 0) return new Set();
    const { d } = this;
    const t = this.store.t;
    const p = new SqlParams(d);
    const keys = d.pairsTable([...last], p);
    const now = d.now();
    // Placeholders in text order (MySQL and SQLite bind `?` by position).
    const gap =
      `EXISTS (SELECT 1 FROM ${t} e WHERE e.message_key = k.k AND e.status = ${COMMITTED} AND e.seq < k.m ` +
      `AND (e.lease_token IS NULL OR e.lease_token <> ${p.add(claim.token)}))`;
    const heldNext =
      `EXISTS (SELECT 1 FROM ${t} n WHERE n.seq = (SELECT MIN(f.seq) FROM ${t} f WHERE f.message_key = k.k ` +
      `AND f.status = ${COMMITTED} AND f.seq > k.m) AND n.status = ${COMMITTED} AND n.lease_expires_at > ${now} ` +
      `AND n.lease_token <> ${p.add(claim.token)})`;
    const rows: Array<{ message_key: string }> = await manager.query(`SELECT k.k AS message_key FROM ${keys} k WHERE ${gap} OR ${heldNext}`, p.values);
    return new Set(rows.map((r) => r.message_key));
  }

  /** Marks published messages DELIVERED (or deletes them, see `finishDelivered`). Returns how many were still ours. */
  async markDelivered(manager: EntityManager, token: string, rows: readonly MessageRow[]): Promise<number> {
    const p = new SqlParams(this.d);
    return finishDelivered(manager, this.store, this.deleteDelivered, rows, (where) => `${where} AND lease_token = ${p.add(token)}`, p, CLEAR_LEASE);
  }

  /** Counts a failed attempt: retried after `retryInMs`, or DEAD when `dead`. Returns false if not ours. */
  async markFailed(manager: EntityManager, token: string, seq: number, error: string, dead: boolean, retryInMs: number): Promise<boolean> {
    const p = new SqlParams(this.d);
    const sql =
      `UPDATE ${this.store.t} SET ${failedSet(p, error, dead, retryInMs)}, ${CLEAR_LEASE} ` +
      `WHERE seq = ${p.add(seq)} AND lease_token = ${p.add(token)} AND status = ${COMMITTED}`;
    return (await affected(manager, sql, p.values)) > 0;
  }

  /**
   * Whether a relay on `relay.ownership: 'rows'` holds a committed message now (a lease not run
   * out): what a relay on `'buckets'` waits for before it reads (see BucketOwnership). A walk of
   * the committed messages' index, done only until it finds none.
   */
  async rowLeasesLive(manager: EntityManager): Promise<boolean> {
    const rows: unknown[] = await manager.query(
      `SELECT seq FROM ${this.store.t} WHERE status = ${COMMITTED} AND lease_expires_at > ${this.d.now()} LIMIT 1`,
    );
    return rows.length > 0;
  }

  /** Gives messages back without counting an attempt (not tried, or the downstream was unreachable). */
  async release(manager: EntityManager, token: string, seqs: number[]): Promise<number> {
    if (seqs.length === 0) return 0;
    const p = new SqlParams(this.d);
    return affected(
      manager,
      `UPDATE ${this.store.t} SET ${CLEAR_LEASE} WHERE ${p.inSeqs('seq', seqs)} AND lease_token = ${p.add(token)}`,
      p.values,
    );
  }
}
