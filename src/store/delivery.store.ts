import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';
import type { OutgoingMessage } from '../publisher/message-publisher.interface.js';
import { affected, type MessageStore } from './message.store.js';
import { deliveryColumns, toStoredMessage, type MessageRow } from './message-row.js';
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

const COMMITTED = `'${MessageStatus.COMMITTED}'`;
const DEAD = `'${MessageStatus.DEAD}'`;
/** The first claim looks for heads among the oldest `WINDOW_FACTOR × batch size` committed messages. */
const WINDOW_FACTOR = 4;
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
  if (checked.length > 0) {
    const c = new SqlParams(d);
    await manager.query(`DELETE FROM ${store.checkTable} WHERE message_id IN (${c.list(checked)})`, c.values);
  }
  return affected(manager, `DELETE FROM ${store.t} WHERE ${condition}`, p.values);
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
    private readonly holdDeadKeys: boolean,
    /** `relay.retentionMs: 0`: a delivered message is deleted by its mark. */
    private readonly deleteDelivered = false,
  ) {}

  private get d() {
    return this.store.dialect;
  }

  /**
   * The conditions for `r` to start a claim: committed, due, not leased, and the lowest-seq
   * committed message of its key. A message committed late (by a check, or an explicit commit)
   * has an older seq than messages of its key that may already be in flight, so it can pass while
   * its key is in another batch: a follower leased by another relay blocks the rest of its key,
   * and the relay reads `contestedKeys` after each claim and leaves such keys (found by the fault
   * suite's chaos test, test/faults/RESULTS.md). Checking "no message of the key in flight" here
   * instead cost the claim 7 → 27–58 ms per 500 messages on 20,000 committed in 1,000 keys.
   */
  private headCondition(now: string): string {
    const t = this.store.t;
    return (
      `r.status = ${COMMITTED} AND r.next_attempt_at <= ${now} AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= ${now}) ` +
      `AND (r.message_key IS NULL OR NOT EXISTS (SELECT 1 FROM ${t} e WHERE e.message_key = r.message_key ` +
      `AND e.status = ${COMMITTED} AND e.seq < r.seq)` +
      (this.holdDeadKeys
        ? ` AND NOT EXISTS (SELECT 1 FROM ${t} d WHERE d.message_key = r.message_key AND d.status = ${DEAD} AND d.seq < r.seq))`
        : ')')
    );
  }

  /**
   * `relay.onDead: 'hold'`: the first DEAD message of key `key` after `seq`, or no limit. A
   * follower past it must not go out (a head committed late can come before a DEAD message).
   */
  private deadBound(key: string, seq: string): string {
    if (!this.holdDeadKeys) return '';
    return (
      ` AND c.seq < COALESCE((SELECT MIN(d.seq) FROM ${this.store.t} d WHERE d.message_key = ${key} ` +
      `AND d.status = ${DEAD} AND d.seq > ${seq}), ${Number.MAX_SAFE_INTEGER})`
    );
  }

  /**
   * `r` is among the oldest `WINDOW_FACTOR × limit` committed messages. The heads are found by
   * walking committed messages in seq order until `limit` heads turn up; when the backlog sits in
   * a few deep keys, heads are rare and the walk went through the whole backlog on every claim
   * (bench workload 6: 20,000 messages in 12 keys drained at 409 msg/s). The window bounds that
   * walk; the followers of its heads are not bounded by it.
   */
  private inWindow(p: SqlParams, limit: number): string {
    const t = this.store.t;
    return (
      `r.seq <= COALESCE((SELECT w.seq FROM ${t} w WHERE w.status = ${COMMITTED} ORDER BY w.seq ` +
      `LIMIT 1 OFFSET ${p.add(limit * WINDOW_FACTOR - 1)}), ${Number.MAX_SAFE_INTEGER})`
    );
  }

  /**
   * Claims through `runner`, which this store tells how: where the claim is one statement
   * (PostgreSQL), in autocommit; elsewhere its statements' row locks must hold until the lease is
   * written, so in a transaction of its own. The caller does not need to know which.
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
    const work = (m: EntityManager) => this.claim(m, owner, token, limit, leaseMs, exhaustive);
    return this.d.claimInOneStatement ? runner.autocommit(label, work) : runner.independent(label, work);
  }

  /**
   * Claims up to `limit` due committed messages for `leaseMs`. On PostgreSQL it is one statement
   * (two when the first finds nothing; autocommit is fine); elsewhere run it inside a transaction.
   */
  async claim(manager: EntityManager, owner: string, token: string, limit: number, leaseMs: number, exhaustive = true): Promise<DeliveryClaim> {
    // First among the oldest committed messages only (bounded work whatever the backlog); the
    // whole queue only when that finds nothing (idle, or every head there blocked) and the caller
    // wants it (`exhaustive`: not for the relay's prefetch, which runs while a batch is in flight).
    if (this.d.claimInOneStatement) {
      const first = await this.claimInOneStatement(manager, owner, token, limit, leaseMs, true);
      if (first.messages.length > 0 || !exhaustive) return first;
      return { ...(await this.claimInOneStatement(manager, owner, token, limit, leaseMs, false)), scannedAll: true };
    }
    const { d } = this;
    const t = this.store.t;
    // Candidates by a plain (consistent, non-locking) read: on InnoDB, SKIP LOCKED also skips the
    // rows the subqueries look at, so a key's earlier messages locked by another relay's claim
    // looked absent and a later message of the key passed for its head (the fault soak on MariaDB
    // saw two relays publish one key at once, #1030 before #901). Then lock the candidates that
    // are still free, re-checking them on their latest version.
    const candidatesIn = (windowed: boolean): Promise<Array<{ seq: number | string }>> => {
      const p0 = new SqlParams(d);
      return manager.query(
        `SELECT r.seq FROM ${t} r WHERE ${this.headCondition(d.now())}${windowed ? ` AND ${this.inWindow(p0, limit)}` : ''} ` +
          `ORDER BY r.seq LIMIT ${p0.add(limit)}`,
        p0.values,
      );
    };
    let candidates = await candidatesIn(true);
    const scannedAll = candidates.length === 0 && exhaustive;
    if (scannedAll) candidates = await candidatesIn(false);
    if (candidates.length === 0) return { token, messages: [], scannedAll };
    const heads = await this.select(
      manager,
      (p) =>
        `SELECT ${deliveryColumns(d)} FROM ${t} WHERE ${p.inSeqs('seq', candidates.map((c) => Number(c.seq)))} AND status = ${COMMITTED} ` +
        `AND next_attempt_at <= ${d.now()} AND (lease_expires_at IS NULL OR lease_expires_at <= ${d.now()}) ORDER BY seq ${d.skipLocked}`,
    );
    if (heads.length === 0) return { token, messages: [], scannedAll };
    const messages = [...heads];
    const keys = [...new Set(heads.map((m) => m.key).filter((k): k is string => k !== null))];
    if (keys.length > 0 && heads.length < limit) {
      const firstDead = await this.firstDeadAfter(manager, heads);
      const rows = await this.select(
        manager,
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
  }

  /**
   * PostgreSQL: the same claim in one round trip and one row version per message. The heads are
   * locked with SKIP LOCKED, which makes their keys ours; their followers (same key, later seq, up
   * to the first one not due or leased by another relay) are read with one bounded index scan per
   * head; the lease is written by the UPDATE that returns the rows. `windowed`: heads only among
   * the oldest committed messages (see `inWindow`).
   */
  private async claimInOneStatement(
    manager: EntityManager,
    owner: string,
    token: string,
    limit: number,
    leaseMs: number,
    windowed: boolean,
  ): Promise<DeliveryClaim> {
    const { d } = this;
    const t = this.store.t;
    const p = new SqlParams(d);
    const now = d.now();
    const limitParam = p.add(limit);
    const rest = `GREATEST(${limitParam}::int - (SELECT count(*) FROM heads)::int, 0)`;
    const sql =
      `WITH heads AS (SELECT r.seq, r.message_key FROM ${t} r WHERE ${this.headCondition(now)}${windowed ? ` AND ${this.inWindow(p, limit)}` : ''} ` +
      `ORDER BY r.seq LIMIT ${limitParam} FOR UPDATE SKIP LOCKED), ` +
      // Per head: the next `rest` messages of its key, cut at the first one not due or leased by
      // another relay (the UPDATE below would skip that one and take the ones after it: a gap in
      // the key, found by the fault suite's chaos test). Bounded by the claim, not by the backlog.
      `followers AS (SELECT z.seq FROM (SELECT f.seq, bool_or(f.blocked) OVER (PARTITION BY f.message_key ORDER BY f.seq) AS cut ` +
      `FROM heads h CROSS JOIN LATERAL (SELECT c.seq, c.message_key, ` +
      `COALESCE(c.next_attempt_at > ${now}, false) OR COALESCE(c.lease_expires_at > ${now}, false) AS blocked ` +
      `FROM ${t} c WHERE c.message_key = h.message_key AND c.status = ${COMMITTED} AND c.seq > h.seq${this.deadBound('h.message_key', 'h.seq')} ` +
      `ORDER BY c.seq LIMIT ${rest}) f) z ` +
      `WHERE NOT z.cut ORDER BY z.seq LIMIT ${rest}) ` +
      // The heads' row locks make the key ours; the UPDATE re-checks each row's latest version.
      `UPDATE ${t} m SET lease_owner = ${p.add(owner)}, lease_token = ${p.add(token)}, lease_expires_at = ${d.nowPlusMs(p.add(leaseMs))} ` +
      `WHERE m.seq IN (SELECT seq FROM heads UNION ALL SELECT seq FROM followers) AND m.status = ${COMMITTED} ` +
      `AND (m.lease_expires_at IS NULL OR m.lease_expires_at <= ${now}) RETURNING ${deliveryColumns(d, 'm')}`;
    // Structured: for an UPDATE, TypeORM's plain query() returns [rows, count] on PostgreSQL.
    const result = await manager.queryRunner!.query(sql, p.values, true);
    const rows = result.records as Array<Record<string, unknown>>;
    const messages = rows.map(toStoredMessage).sort((a, b) => a.seq - b.seq);
    return { token, messages };
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

  /** `relay.onDead: 'hold'`: per key of `heads`, the lowest seq of a DEAD message after the head. */
  private async firstDeadAfter(manager: EntityManager, heads: readonly MessageRow[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    const keyed = heads.filter((h) => h.key !== null);
    if (!this.holdDeadKeys || keyed.length === 0) return result;
    const p = new SqlParams(this.d);
    const rows: Array<{ message_key: string; seq: number | string }> = await manager.query(
      `SELECT message_key, MIN(seq) AS seq FROM ${this.store.t} WHERE status = ${DEAD} AND message_key IN (${p.list(keyed.map((h) => h.key))}) ` +
        `GROUP BY message_key`,
      p.values,
    );
    // In this mode no DEAD message comes before a head (it would not be one): every one found is after it.
    for (const row of rows) result.set(row.message_key, Number(row.seq));
    return result;
  }

  private async select(manager: EntityManager, build: (p: SqlParams) => string, withDue = false): Promise<MessageRow[]> {
    const p = new SqlParams(this.d);
    const sql = build(p);
    const rows: Array<Record<string, unknown>> = await manager.query(sql, p.values);
    return rows.map((row) => {
      const message = toStoredMessage(row);
      return withDue ? Object.assign(message, { due: Number(row.due) === 1 }) : message;
    });
  }
}
