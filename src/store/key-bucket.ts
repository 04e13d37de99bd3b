import { KEY_BUCKETS } from './dialects/bucket-tables.js';
import { hash32 } from './sql-params.js';

/**
 * @internal The key bucket of a message: its key's (FNV-1a) hash modulo the table's buckets, so
 * one key's messages are all in one bucket; a message without a key is spread by its id.
 */
export function keyBucket(key: string | null, id: string): number {
  // Unsigned first: a negative hash that is a multiple of the bucket count would otherwise give -0,
  // which Object.is (and so a test, a Map of a few engines, a JSON round trip) tells from 0.
  // KEY_BUCKETS divides 2^32, so this is the same bucket as `h & 255` on the signed hash in SQL.
  return (hash32(key ?? id) >>> 0) % KEY_BUCKETS;
}
