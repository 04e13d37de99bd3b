import { countWithinBytes, recordBytes } from './record-size.js';

describe('record sizes', () => {
  it('counts key, value, headers and a record overhead', () => {
    const message = { id: 'i', topic: 't', key: 'ké', value: Buffer.alloc(100), headers: { 'tm-message-id': 'abc' }, timestamp: new Date() };
    // 32 overhead + 100 value + 3 key bytes (é is 2) + 13 + 3 + 2 header
    expect(recordBytes(message)).toBe(153);
  });

  it('takes messages from the first while they fit, and always at least one', () => {
    const size = (n: number) => n;
    expect(countWithinBytes([400, 400, 400], 1_000, size)).toBe(2);
    expect(countWithinBytes([400, 600, 1], 1_000, size)).toBe(2);
    expect(countWithinBytes([5_000, 1], 1_000, size)).toBe(1);
    expect(countWithinBytes([1, 5_000], 1_000, size)).toBe(1);
    expect(countWithinBytes([], 1_000, size)).toBe(0);
  });
});
