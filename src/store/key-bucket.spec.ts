import { KEY_BUCKETS } from './dialects/bucket-tables.js';
import { keyBucket } from './key-bucket.js';
import { hash32 } from './sql-params.js';

describe('keyBucket', () => {
  it('puts every message of a key in one bucket, whatever its id', () => {
    expect(keyBucket('order-42', 'a')).toBe(keyBucket('order-42', 'b'));
  });

  it('is 32-bit FNV-1a modulo 256, as computed independently in SQL (bench/workloads/relay-drain.ts)', () => {
    // Vectors from PostgreSQL: the FNV-1a recursion in bigint arithmetic, `h & 255`.
    expect(['key-0', 'key-1', 'key-2', 'key-3', 'key-4'].map((k) => keyBucket(k, ''))).toEqual([217, 70, 179, 32, 37]);
  });

  it('gives bucket 0 as +0, never -0, for a negative hash that is a multiple of the bucket count', () => {
    // CI once read 0 back from SQLite where keyBucket had returned -0 (a keyless message's id hashed so).
    let id = 0;
    while (!(hash32(`id-${id}`) < 0 && hash32(`id-${id}`) % KEY_BUCKETS === 0)) id++;
    expect(Object.is(keyBucket(null, `id-${id}`), 0)).toBe(true);
    expect(Object.is(keyBucket(`id-${id}`, 'any'), 0)).toBe(true);
  });

  it('spreads keys, and keyless messages by their id, over all buckets', () => {
    const keyed = new Set(Array.from({ length: 10_000 }, (_, i) => keyBucket(`customer-${i}`, '')));
    const keyless = new Set(Array.from({ length: 10_000 }, (_, i) => keyBucket(null, `0190-${i}`)));
    expect(keyed.size).toBe(KEY_BUCKETS);
    expect(keyless.size).toBe(KEY_BUCKETS);
    for (const bucket of [...keyed, ...keyless]) expect(bucket >= 0 && bucket < KEY_BUCKETS && Number.isInteger(bucket)).toBe(true);
  });
});
