import { KEY_BUCKETS } from './dialects/bucket-tables.js';
import { hash32 } from './sql-params.js';

/**
 * @internal The key bucket of a message: its key's (FNV-1a) hash modulo the table's buckets, so
 * one key's messages are all in one bucket; a message without a key is spread by its id.
 */
export function keyBucket(key: string | null, id: string): number {
  const h = hash32(key ?? id) % KEY_BUCKETS;
  return h < 0 ? h + KEY_BUCKETS : h;
}
