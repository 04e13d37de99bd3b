import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../message/message-status.enum.js';
import { KEY_BUCKETS, ROW_LEASES_RETIRED } from './dialects/bucket-tables.js';
import { failedSet, finishDelivered } from './delivery.store.js';
import { keyBucket } from './key-bucket.js';
import { affected, type MessageStore } from './message.store.js';
import { deliveryColumns, DeliveryRow, type MessageRow } from './message-row.js';
import { SqlParams } from './sql-params.js';

const COMMITTED = `'${MessageStatus.COMMITTED}'`;

/** @internal A committed message read by a bucket owner: its row and its key bucket. */
export interface BucketRow extends MessageRow {
  bucket: number;
}

/** @internal A key held back from `seq` on (a message not due, or DEAD under `onDead: 'hold'`). */
export type BlockedKeys = Map<string, number>;

/**
 * @internal The relay's queries. Relays lease key buckets (the `_bucket`
 * table: owner, fencing token, expiry), announce themselves in the `_relay` table so each takes its
 * share, and read their buckets' committed messages in seq order: one key, one bucket, one owner,
 * so per-key order needs no per-message lease.
 */
export class BucketStore {
  readonly bucketTable: string;
  readonly relayTable: string;

  constructor(
    private readonly store: MessageStore,
    /** `relay.onDead: 'hold'`: a DEAD message holds back the later messages of its key. */
    private readonly holdDeadKeys: boolean,
    /** `relay.retentionMs: 0`: a delivered message is deleted by its mark. */
    private readonly deleteDelivered = false,
  ) {
    this.bucketTable = store.dialect.quote(`${store.tableName}_bucket`);
    this.relayTable = store.dialect.quote(`${store.tableName}_relay`);
  }

  private get d() {
    return this.store.dialect;
  }

  /**
   * Announces `owner` alive for `leaseMs`, forgets relays whose announcement expired, and returns
   * how many relays are alive (this one included).
   */
  async heartbeat(manager: EntityManager, owner: string, leaseMs: number): Promise<number> {
    const { d } = this;
    await this.announce(manager, owner, leaseMs);
    await manager.query(`DELETE FROM ${this.relayTable} WHERE expires_at <= ${d.now()}`);
    return Math.max(1, await this.liveRelays(manager));
  }

  /** Announces `owner` alive for `leaseMs`. */
  private async announce(manager: EntityManager, owner: string, leaseMs: number): Promise<void> {
    const { d } = this;
    const p = new SqlParams(d);
    await manager.query(d.upsert(this.relayTable, ['owner', 'expires_at'], `${p.add(owner)}, ${d.nowPlusMs(p.add(leaseMs))}`, 'owner', ['expires_at']), p.values);
  }

  /** How many relays announce themselves now (their announcement has not run out; not the fifth migration's marker). */
  async liveRelays(manager: EntityManager): Promise<number> {
    const rows: Array<{ n: number | string }> = await manager.query(
      `SELECT COUNT(*) AS n FROM ${this.relayTable} WHERE expires_at > ${this.d.now()} AND owner <> '${ROW_LEASES_RETIRED}'`,
    );
    return Number(rows[0].n);
  }

  /**
   * Extends the leases of the buckets `owner` holds under the given tokens, and (`announce`) its
   * announcement, and returns the buckets it still holds (bucket → token). A bucket whose lease ran
   * out is not among them, whether or not another relay took it over meanwhile; the relay takes it
   * again through a maintenance.
   */
  async renew(manager: EntityManager, owner: string, tokens: ReadonlySet<string>, leaseMs: number, announce = true): Promise<Map<number, string>> {
    if (tokens.size === 0) return new Map();
    const { d } = this;
    const p = new SqlParams(d);
    await manager.query(
      `UPDATE ${this.bucketTable} SET expires_at = ${d.nowPlusMs(p.add(leaseMs))} WHERE owner = ${p.add(owner)} ` +
        `AND token IN (${p.list([...tokens])}) AND expires_at > ${d.now()}`,
      p.values,
    );
    if (announce) await this.announce(manager, owner, leaseMs);
    return this.held(manager, owner, tokens);
  }

  /** The buckets `owner` holds under the given tokens, with a lease that has not run out. */
  async held(manager: EntityManager, owner: string, tokens: ReadonlySet<string>): Promise<Map<number, string>> {
    if (tokens.size === 0) return new Map();
    const p = new SqlParams(this.d);
    const rows: Array<{ bucket: number | string; token: string }> = await manager.query(
      `SELECT bucket, token FROM ${this.bucketTable} WHERE owner = ${p.add(owner)} AND token IN (${p.list([...tokens])}) ` +
        `AND expires_at > ${this.d.now()}`,
      p.values,
    );
    return new Map(rows.map((r) => [Number(r.bucket), r.token]));
  }

  /** Buckets no relay holds: never taken, given back, or whose lease ran out. */
  async free(manager: EntityManager): Promise<number[]> {
    const { d } = this;
    const rows: Array<{ bucket: number | string }> = await manager.query(
      `SELECT bucket FROM ${this.bucketTable} WHERE owner IS NULL OR expires_at IS NULL OR expires_at <= ${d.now()} ORDER BY bucket`,
    );
    return rows.map((r) => Number(r.bucket));
  }

  /**
   * Takes those of `buckets` that are still free under a new fencing `token`; returns the ones
   * taken (another relay may have been faster for some).
   */
  async acquire(manager: EntityManager, owner: string, token: string, buckets: readonly number[], leaseMs: number): Promise<number[]> {
    if (buckets.length === 0) return [];
    const { d } = this;
    const p = new SqlParams(d);
    await manager.query(
      `UPDATE ${this.bucketTable} SET owner = ${p.add(owner)}, token = ${p.add(token)}, expires_at = ${d.nowPlusMs(p.add(leaseMs))} ` +
        `WHERE ${p.inSeqs('bucket', buckets)} AND (owner IS NULL OR expires_at IS NULL OR expires_at <= ${d.now()})`,
      p.values,
    );
    return [...(await this.held(manager, owner, new Set([token]))).keys()];
  }

  /** Gives buckets back (held under the given tokens), so another relay takes them at once. */
  async release(manager: EntityManager, owner: string, buckets: ReadonlyMap<number, string>): Promise<number> {
    if (buckets.size === 0) return 0;
    const p = new SqlParams(this.d);
    return affected(
      manager,
      `UPDATE ${this.bucketTable} SET owner = NULL, token = NULL, expires_at = NULL WHERE owner = ${p.add(owner)} ` +
        `AND ${p.inSeqs('bucket', [...buckets.keys()])} AND token IN (${p.list([...new Set(buckets.values())])})`,
      p.values,
    );
  }

  /** Leaves the group: forgets `owner`'s announcement. */
  async leave(manager: EntityManager, owner: string): Promise<void> {
    const p = new SqlParams(this.d);
    await manager.query(`DELETE FROM ${this.relayTable} WHERE owner = ${p.add(owner)}`, p.values);
  }

  /**
   * The committed messages of `owned` buckets that are due, in seq order, at most `limit`: not the
   * ones in `exclude` (in flight), nor those of a blocked key from its blocking seq on. A message
   * written without a bucket (by an instance of an earlier version, before `fillBuckets` reached it)
   * is read too and kept if its key's bucket is owned. Nothing while a relay of the row-lease design
   * (an earlier version) holds a committed message under a live lease: in the same statement, so
   * the two designs never publish at once.
   */
  async read(
    manager: EntityManager,
    owned: ReadonlySet<number>,
    exclude: ReadonlySet<number>,
    blocked: BlockedKeys,
    limit: number,
  ): Promise<BucketRow[]> {
    if (owned.size === 0) return [];
    const { d } = this;
    const p = new SqlParams(d);
    const all = owned.size === KEY_BUCKETS;
    const buckets = all ? '' : ` AND (${p.inSeqs('r.bucket', [...owned])} OR r.bucket IS NULL)`;
    const notIn = exclude.size > 0 ? ` AND NOT (${p.inSeqs('r.seq', [...exclude])})` : '';
    const notBlocked =
      blocked.size > 0 ? ` AND NOT EXISTS (SELECT 1 FROM ${d.pairsTable([...blocked], p)} b WHERE b.k = r.message_key AND r.seq > b.m)` : '';
    const rows: Array<Record<string, unknown>> = await manager.query(
      `SELECT ${deliveryColumns(d, 'r')}, r.bucket FROM ${this.store.t} r WHERE r.status = ${COMMITTED} AND r.next_attempt_at <= ${d.now()}` +
        `${buckets}${notIn}${notBlocked} AND NOT EXISTS (${this.liveRowLease()}) ORDER BY r.seq LIMIT ${p.add(limit)}`,
      p.values,
    );
    const result: BucketRow[] = [];
    for (const row of rows) {
      const message = new DeliveryRow(row) as DeliveryRow & BucketRow;
      message.bucket = row.bucket === null ? keyBucket(message.key, message.id) : Number(row.bucket);
      if (owned.has(message.bucket)) result.push(message);
    }
    return result;
  }

  /** A live lease of the row-lease design on a committed message (its index makes this a probe of an empty index once they are gone). */
  private liveRowLease(): string {
    return `SELECT 1 FROM ${this.store.t} l WHERE l.status = ${COMMITTED} AND l.lease_token IS NOT NULL AND l.lease_expires_at > ${this.d.now()}`;
  }

  /** How many committed messages a relay of the row-lease design (an earlier version) holds under a live lease. */
  async rowLeases(manager: EntityManager): Promise<number> {
    const rows: Array<{ n: number | string }> = await manager.query(`SELECT COUNT(*) AS n FROM (${this.liveRowLease()}) x`);
    return Number(rows[0].n);
  }

  /**
   * Writes the key bucket of up to `limit` live messages written without one (by instances of an
   * earlier version: every message written by this one carries it); returns how many. Restartable
   * and idempotent: any relay may run it, at any time.
   */
  async fillBuckets(manager: EntityManager, limit: number): Promise<number> {
    const { d } = this;
    const p = new SqlParams(d);
    const rows: Array<{ seq: number | string; message_key: string | null; id: string }> = await manager.query(
      `SELECT seq, message_key, id FROM ${this.store.t} WHERE bucket IS NULL AND status IN ('${MessageStatus.HALF}', ${COMMITTED}, ` +
        `'${MessageStatus.DEAD}', '${MessageStatus.CHECK_EXHAUSTED}') ORDER BY seq LIMIT ${p.add(limit)}`,
      p.values,
    );
    if (rows.length === 0) return 0;
    const byBucket = new Map<number, number[]>();
    for (const row of rows) {
      const bucket = keyBucket(row.message_key, row.id);
      byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), Number(row.seq)]);
    }
    const u = new SqlParams(d);
    // The bucket inline (a number of 0..255 computed here): a bound CASE result has no type on PostgreSQL.
    const cases = [...byBucket].map(([bucket, seqs]) => `WHEN ${u.inSeqs('seq', seqs)} THEN ${Math.trunc(bucket)}`).join(' ');
    const all = rows.map((r) => Number(r.seq));
    return affected(manager, `UPDATE ${this.store.t} SET bucket = CASE ${cases} END WHERE ${u.inSeqs('seq', all)} AND bucket IS NULL`, u.values);
  }

  /**
   * Per key of the `owned` buckets, the lowest seq that holds the key back: with `notDue`, a
   * committed message not due yet (its retry waits: a walk of the committed messages, done when
   * buckets are taken and now and again); under `onDead: 'hold'`, a DEAD message (on its index).
   */
  async blockedKeys(manager: EntityManager, owned: ReadonlySet<number>, notDue: boolean): Promise<{ notDue: BlockedKeys; dead: BlockedKeys }> {
    const { d } = this;
    const result = { notDue: new Map() as BlockedKeys, dead: new Map() as BlockedKeys };
    const conditions = [
      ...(notDue ? [`(status = ${COMMITTED} AND next_attempt_at > ${d.now()})`] : []),
      ...(this.holdDeadKeys ? [`status = '${MessageStatus.DEAD}'`] : []),
    ];
    if (owned.size === 0 || conditions.length === 0) return result;
    const rows: Array<{ message_key: string; status: string; seq: number | string }> = await manager.query(
      `SELECT message_key, status, MIN(seq) AS seq FROM ${this.store.t} WHERE message_key IS NOT NULL AND (${conditions.join(' OR ')}) ` +
        `GROUP BY message_key, status`,
    );
    for (const row of rows) {
      if (owned.has(keyBucket(row.message_key, ''))) (row.status === MessageStatus.DEAD ? result.dead : result.notDue).set(row.message_key, Number(row.seq));
    }
    return result;
  }

  /**
   * Marks published messages DELIVERED (or deletes them with `relay.retentionMs: 0`); returns how
   * many were still COMMITTED. Not fenced by the bucket's token: the messages were published, and
   * that stays true whoever holds the bucket now (a relay that took it over meanwhile publishes
   * them again at most, which the inbox absorbs).
   */
  markDelivered(manager: EntityManager, rows: readonly MessageRow[]): Promise<number> {
    return finishDelivered(manager, this.store, this.deleteDelivered, rows, (where) => where, new SqlParams(this.d));
  }

  /**
   * Marks the messages with these ids DELIVERED (or deletes them with `relay.retentionMs: 0`) where
   * they are still COMMITTED; returns how many. Exactly-once recovery: Kafka committed them (a
   * slot's last committed marks record) and the database may not have marked them. Applying a
   * record again is harmless: every message it names is in Kafka, so marking it is true whenever it
   * happens.
   */
  async markDeliveredIds(manager: EntityManager, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const p = new SqlParams(this.d);
    const rows: Array<Record<string, unknown>> = await manager.query(
      `SELECT ${deliveryColumns(this.d, 'r')} FROM ${this.store.t} r WHERE r.id IN (${p.list([...ids])}) AND r.status = ${COMMITTED}`,
      p.values,
    );
    return this.markDelivered(manager, rows.map((row) => new DeliveryRow(row)));
  }

  /**
   * Counts a failed attempt: retried after `retryInMs`, or DEAD when `dead`. Fenced by the bucket's
   * token: a relay that lost the bucket does not count attempts against its new owner's work.
   */
  async markFailed(manager: EntityManager, row: BucketRow, token: string, error: string, dead: boolean, retryInMs: number): Promise<boolean> {
    const p = new SqlParams(this.d);
    const sql =
      `UPDATE ${this.store.t} SET ${failedSet(p, error, dead, retryInMs)} ` +
      `WHERE seq = ${p.add(row.seq)} AND status = ${COMMITTED} ` +
      `AND EXISTS (SELECT 1 FROM ${this.bucketTable} b WHERE b.bucket = ${p.add(row.bucket)} AND b.token = ${p.add(token)})`;
    return (await affected(manager, sql, p.values)) > 0;
  }
}
