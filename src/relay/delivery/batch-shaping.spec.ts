import type { MessageRow } from '../../store/message-row.js';
import { oneTopicPerKey, withoutSome } from './batch-shaping.js';

const row = (seq: number, key: string | null, topic: string) => ({ seq, key, topic }) as unknown as MessageRow;
const seqs = (rows: readonly MessageRow[]) => rows.map((r) => r.seq);

describe('oneTopicPerKey', () => {
  it('keeps a batch on one topic as it is (the same array)', () => {
    const rows = [row(1, 'a', 't'), row(2, 'b', 't'), row(3, 'a', 't')];
    expect(oneTopicPerKey(rows)).toBe(rows);
  });

  it("defers a key's message on a second topic, and every later message of that key, in order", () => {
    const rows = [row(1, 'a', 't1'), row(2, 'b', 't2'), row(3, 'a', 't2'), row(4, 'b', 't2'), row(5, 'a', 't1'), row(6, null, 't3')];
    // a: 1 on t1, then 3 on t2 → 3 and everything of a after it (5) wait; b stays on t2; keyless pass.
    expect(seqs(oneTopicPerKey(rows))).toEqual([1, 2, 4, 6]);
  });

  it('lets keyless messages through on any topic', () => {
    expect(seqs(oneTopicPerKey([row(1, null, 't1'), row(2, null, 't2')]))).toEqual([1, 2]);
  });
});

describe('withoutSome', () => {
  it('removes the given rows and keeps the order', () => {
    const rows = [row(1, 'a', 't'), row(2, 'b', 't'), row(3, 'c', 't')];
    expect(seqs(withoutSome(rows, [rows[1]]))).toEqual([1, 3]);
    expect(withoutSome(rows, rows)).toEqual([]);
  });
});
