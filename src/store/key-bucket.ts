import { KEY_BUCKETS } from './dialects/bucket-tables.js';
import { hash32 } from './sql-params.js';

/**
 * @internal The key bucket of a message: its key's (FNV-1a) hash modulo the table's buckets, so
 * one key's messages are all in one bucket; a message without a key is spread by its id.
 */
export function keyBucket(key: string | null, id: string): number {
  // Unsigned first: a negative hash that is a multiple of the bucket count would otherwise give -0,
  // not the 0 the database gives back. KEY_BUCKETS divides 2^32, so the bucket is `h & 255` as in SQL.
  return (hash32(key ?? id) >>> 0) % KEY_BUCKETS;
}
