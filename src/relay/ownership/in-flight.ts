import type { BucketRow } from '../../store/bucket.store.js';

/**
 * @internal The messages a relay claimed and has not yet marked, failed or given back: the next
 * read leaves them out (never their keys: a key's next messages go out right after them, from the
 * same relay), and a bucket is given back only once none of its messages is in flight.
 */
export class InFlight {
  private readonly seqs = new Set<number>();
  private readonly perBucket = new Map<number, number>();

  add(row: BucketRow): void {
    this.seqs.add(row.seq);
    this.perBucket.set(row.bucket, (this.perBucket.get(row.bucket) ?? 0) + 1);
  }

  /** `seqs` of `rows` are no longer in flight. */
  settle(rows: readonly BucketRow[], seqs: readonly number[]): void {
    const bySeq = new Map(rows.map((r) => [r.seq, r]));
    for (const seq of seqs) {
      if (!this.seqs.delete(seq)) continue;
      const bucket = bySeq.get(seq)!.bucket;
      const left = (this.perBucket.get(bucket) ?? 1) - 1;
      if (left > 0) this.perBucket.set(bucket, left);
      else this.perBucket.delete(bucket);
    }
  }

  /** A copy of the seqs in flight (a read's exclusion list). */
  snapshot(): Set<number> {
    return new Set(this.seqs);
  }

  hasBucket(bucket: number): boolean {
    return this.perBucket.has(bucket);
  }
}
