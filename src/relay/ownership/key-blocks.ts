import type { BlockedKeys } from '../../store/bucket.store.js';
import type { MessageRow } from '../../store/message-row.js';

/** @internal `map[key]` lowered to `seq` (a key is held back from its earliest blocking message on). */
export function setMin(map: BlockedKeys, key: string, seq: number): void {
  map.set(key, Math.min(seq, map.get(key) ?? Infinity));
}

/**
 * @internal The keys a relay holds back, each from a seq on, so that a key's later messages never
 * pass a message of it that failed: retries not due yet (its own failures, and what the database
 * said when it took buckets), DEAD messages under `onDead: 'hold'` (read again at each maintenance:
 * an operator may discard or replay one), and failures whose write has not finished yet (a read
 * cannot know them).
 */
export class KeyBlocks {
  private notDue: BlockedKeys = new Map();
  private dead: BlockedKeys = new Map();
  /** Failures being written, from the seq on. */
  private readonly writing: BlockedKeys = new Map();
  /** Failure writes finished so far (a re-read that overlapped one merges instead of replacing). */
  private writes = 0;

  constructor(private readonly holdDead: boolean) {}

  /** Every key a read leaves out now, from its seq on. */
  now(): BlockedKeys {
    if (this.writing.size === 0 && this.dead.size === 0) return this.notDue;
    const all = new Map(this.notDue);
    for (const [key, seq] of this.dead) setMin(all, key, seq);
    for (const [key, seq] of this.writing) setMin(all, key, seq);
    return all;
  }

  /** The messages of `rows` a block since they were read holds back. */
  heldBack(rows: readonly MessageRow[]): MessageRow[] {
    const blocked = this.now();
    if (blocked.size === 0) return [];
    return rows.filter((r) => r.key !== null && r.seq > (blocked.get(r.key) ?? Infinity));
  }

  /** `row` was read: the message that held its key back is due again (or was replayed), its key goes on behind it. */
  read(row: MessageRow): void {
    if (row.key === null) return;
    if (this.notDue.get(row.key) === row.seq) this.notDue.delete(row.key);
    if (this.dead.get(row.key) === row.seq) this.dead.delete(row.key);
  }

  /** A failure of `row` is about to be written. */
  failing(row: MessageRow): void {
    if (row.key !== null) setMin(this.writing, row.key, row.seq);
  }

  /** The failure of `row` was written (or not): from now on a read sees it, a retry not due or a DEAD message (which under 'skip' lets its key go on at once). */
  failed(row: MessageRow, dead: boolean): void {
    this.writes++;
    if (row.key === null) return;
    const seq = this.writing.get(row.key);
    if (seq === undefined) return;
    if (!dead) setMin(this.notDue, row.key, seq);
    else if (this.holdDead) setMin(this.dead, row.key, seq);
    this.writing.delete(row.key);
  }

  /** Where a re-read from the database starts: it replaces what it read only if no failure was written meanwhile. */
  mark(): { writes: number; writing: number } {
    return { writes: this.writes, writing: this.writing.size };
  }

  /**
   * What the database says now (`notDue` when it was asked, `dead` under 'hold'). Replaced only
   * when no failure was being written since `since`; otherwise merged (a block too many lasts
   * until the next maintenance; one too few would let a key's later messages pass).
   */
  refresh(since: { writes: number; writing: number }, found: { notDue?: BlockedKeys; dead?: BlockedKeys }): void {
    const clean = since.writing === 0 && this.writing.size === 0 && since.writes === this.writes;
    const merge = (current: BlockedKeys, read: BlockedKeys): BlockedKeys => {
      if (clean) return read;
      for (const [key, seq] of read) setMin(current, key, seq);
      return current;
    };
    if (found.notDue) this.notDue = merge(this.notDue, found.notDue);
    if (found.dead && this.holdDead) this.dead = merge(this.dead, found.dead);
  }
}
