import { uuidV7 } from './uuid-v7.js';

describe('uuidV7', () => {
  it('is an RFC 9562 version 7 UUID carrying the time', () => {
    const id = uuidV7(0x0190_e1a2_b3c4);
    expect(id).toMatch(/^0190e1a2-b3c4-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('grows strictly within one millisecond and across milliseconds', () => {
    const ids = [...Array.from({ length: 5000 }, () => uuidV7(1_800_000_000_000)), uuidV7(1_800_000_000_005)];
    const sorted = [...ids].sort();
    expect(sorted).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps its random bits fresh across refills of its random pool (no two ids share them)', () => {
    // 10,000 ids use 160,000 random bytes: the 4 KiB pool is refilled about 40 times.
    const ids = Array.from({ length: 10_000 }, (_, i) => uuidV7(1_950_000_000_000 + i));
    const randomParts = ids.map((id) => id.replace(/-/g, '').slice(16));
    expect(new Set(randomParts).size).toBe(ids.length);
    expect(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toBe(true);
  });

  it('never goes backwards when the clock does', () => {
    const later = uuidV7(1_900_000_000_000);
    const earlierClock = uuidV7(1_899_999_999_000);
    expect(earlierClock > later).toBe(true);
  });
});
