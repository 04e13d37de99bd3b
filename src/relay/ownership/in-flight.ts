import type { BucketRow } from '../../store/bucket.store.js';

/**
 * @internal The messages a relay claimed and has not yet marked, failed or given back: the next
 * read leaves them out (never their keys: a key's next messages go out right after them, from the
 * same relay), and a bucket is given back only once none of its messages is in flight.
 *
 * Each message is held by the claim that read it last, and only that claim settles it. A claim
 * lets a message go at once (a key held back behind a failure) and gives it back again when it is
 * finished; by then the next claim may have read it again: the late give-back of the first claim
 * must not take it out of flight from under the second, or a third read would publish it again,
 * after later messages of its key (found by the suite on CI, 2026-12-04).
 */
export class InFlight {
  /** seq → the claim holding it and its bucket. */
  private readonly held = new Map<number, { claim: object; bucket: number }>();
  private readonly perBucket = new Map<number, number>();

  /** `row` was read by `claim`. */
  add(claim: object, row: BucketRow): void {
    const before = this.held.get(row.seq);
    if (before) this.leave(before.bucket);
    this.held.set(row.seq, { claim, bucket: row.bucket });
    this.perBucket.set(row.bucket, (this.perBucket.get(row.bucket) ?? 0) + 1);
  }

  /** `seqs` are no longer in flight for `claim` (those another claim read since stay in flight). */
  settle(claim: object, seqs: readonly number[]): void {
    for (const seq of seqs) {
      const entry = this.held.get(seq);
      if (entry === undefined || entry.claim !== claim) continue;
      this.held.delete(seq);
      this.leave(entry.bucket);
    }
  }

  /** A copy of the seqs in flight (a read's exclusion list). */
  snapshot(): Set<number> {
    return new Set(this.held.keys());
  }

  hasBucket(bucket: number): boolean {
    return this.perBucket.has(bucket);
  }

  private leave(bucket: number): void {
    const left = (this.perBucket.get(bucket) ?? 1) - 1;
    if (left > 0) this.perBucket.set(bucket, left);
    else this.perBucket.delete(bucket);
  }
}
