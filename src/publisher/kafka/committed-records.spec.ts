import { committedRecords, type BatchOfRecords } from './committed-records.js';

const TX = 0x10;
const CONTROL = 0x20;
let next = 0n;
const data = (producerId: bigint, value: string, transactional = true): BatchOfRecords => ({
  firstOffset: next++,
  attributes: transactional ? TX : 0,
  producerId,
  records: [{ offsetDelta: 0, key: null, value: Buffer.from(value) }],
});
const marker = (producerId: bigint, type: 'abort' | 'commit'): BatchOfRecords => {
  const key = Buffer.alloc(4);
  key.writeInt16BE(type === 'abort' ? 0 : 1, 2);
  return { firstOffset: next++, attributes: TX | CONTROL, producerId, records: [{ offsetDelta: 0, key, value: Buffer.alloc(6) }] };
};
const values = (batches: BatchOfRecords[]) => committedRecords(batches).records.map((r) => r.value?.toString());

describe('committedRecords (read_committed from the batches themselves)', () => {
  beforeEach(() => (next = 0n));

  it('abort, commit, abort, commit of one producer: only the committed records (the case @platformatic/kafka 2.12 gets wrong)', () => {
    const batches = [data(7n, 'abort-0'), marker(7n, 'abort'), data(7n, 'commit-1'), marker(7n, 'commit'), data(7n, 'abort-2'), marker(7n, 'abort'), data(7n, 'commit-3'), marker(7n, 'commit')];
    expect(values(batches)).toEqual(['commit-1', 'commit-3']);
  });

  it('interleaved producers: each batch follows its own producer\'s next marker; records outside transactions are committed', () => {
    const batches = [data(1n, 'a1'), data(2n, 'b1'), data(3n, 'plain', false), marker(2n, 'commit'), data(1n, 'a2'), marker(1n, 'abort')];
    expect(values(batches)).toEqual(['b1', 'plain']);
  });

  it('offsets: the batch\'s first offset plus each record\'s delta', () => {
    const batch: BatchOfRecords = { firstOffset: 40n, attributes: 0, producerId: -1n, records: [0, 1, 2].map((d) => ({ offsetDelta: d, key: null, value: Buffer.from(`v${d}`) })) };
    expect(committedRecords([batch]).records.map((r) => r.offset)).toEqual([40n, 41n, 42n]);
  });

  it('a transaction whose marker is not in the run: nothing from its first record on, and where to read again', () => {
    const batches = [data(1n, 'a1'), marker(1n, 'commit'), data(2n, 'b1'), data(1n, 'plain', false)];
    expect(committedRecords(batches)).toEqual({ records: [expect.objectContaining({ offset: 0n })], undecidedFrom: 2n });
  });
});
