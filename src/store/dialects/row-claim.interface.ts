import type { EntityManager } from 'typeorm';
import { MessageStatus } from '../../message/message-status.enum.js';
import type { DeliveryClaim, StatementRunner } from '../delivery.store.js';
import type { SqlParams } from '../sql-params.js';
import type { SqlDialect } from './sql-dialect.interface.js';

/** @internal One claim of a relay on `relay.ownership: 'rows'`. */
export interface RowClaimRequest {
  owner: string;
  token: string;
  limit: number;
  leaseMs: number;
  /** Look past the oldest committed messages when they yield nothing (not for a prefetch). */
  exhaustive: boolean;
}

/**
 * @internal How one database claims committed messages row by row (`relay.ownership: 'rows'`):
 * the statements, and how they must run. One implementation per way of claiming, chosen by the
 * dialect (`SqlDialect.rowClaim`); the store and the relay do not ask which.
 */
export interface RowClaimQueries {
  /**
   * Runs `work` (a claim) through `runner` as this database needs: in autocommit where the claim
   * is one statement, in a transaction of its own where row locks must hold across statements.
   */
  run<T>(runner: StatementRunner, label: string, work: (manager: EntityManager) => Promise<T>): Promise<T>;
  claim(manager: EntityManager, sql: RowClaimSql, request: RowClaimRequest): Promise<DeliveryClaim>;
}

export const COMMITTED = `'${MessageStatus.COMMITTED}'`;
export const DEAD = `'${MessageStatus.DEAD}'`;
/** The first claim looks for heads among the oldest `WINDOW_FACTOR × batch size` committed messages. */
const WINDOW_FACTOR = 4;

/**
 * @internal The conditions every row claim shares, whatever the database: what makes a message a
 * key's head, the window of oldest messages heads are looked for in, and the DEAD bound.
 */
export class RowClaimSql {
  constructor(
    /** The message table, quoted. */
    readonly t: string,
    readonly d: SqlDialect,
    /** `relay.onDead: 'hold'`: a DEAD message holds back the later messages of its key. */
    readonly holdDeadKeys: boolean,
  ) {}

  /**
   * The conditions for `r` to start a claim: committed, due, not leased, and the lowest-seq
   * committed message of its key. A message committed late (by a check, or an explicit commit)
   * has an older seq than messages of its key that may already be in flight, so it can pass while
   * its key is in another batch: a follower leased by another relay blocks the rest of its key,
   * and the relay reads `contestedKeys` after each claim and leaves such keys (found by the fault
   * suite's chaos test, test/faults/RESULTS.md). Checking "no message of the key in flight" here
   * instead cost the claim 7 → 27–58 ms per 500 messages on 20,000 committed in 1,000 keys.
   */
  headCondition(now: string): string {
    const { t } = this;
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
  deadBound(key: string, seq: string): string {
    if (!this.holdDeadKeys) return '';
    return (
      ` AND c.seq < COALESCE((SELECT MIN(d.seq) FROM ${this.t} d WHERE d.message_key = ${key} ` +
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
  inWindow(p: SqlParams, limit: number): string {
    return (
      `r.seq <= COALESCE((SELECT w.seq FROM ${this.t} w WHERE w.status = ${COMMITTED} ORDER BY w.seq ` +
      `LIMIT 1 OFFSET ${p.add(limit * WINDOW_FACTOR - 1)}), ${Number.MAX_SAFE_INTEGER})`
    );
  }
}
