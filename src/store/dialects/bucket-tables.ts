/** @internal Key buckets of a message table (`relay.ownership: 'buckets'`); a constant of the table. */
export const KEY_BUCKETS = 256;

/** The column types the bucket tables use on one database. */
export interface BucketTableTypes {
  quote(identifier: string): string;
  smallint: string;
  text: string;
  time: string;
  /** Table options after the closing parenthesis (e.g. the MySQL engine). */
  tableSuffix: string;
}

/**
 * @internal DDL of the fourth migration: the message's key bucket (written by the library when
 * `relay.ownership` is `'buckets'`, NULL otherwise and for rows written before), the bucket lease
 * table (one row per bucket, leased by relays like Kafka partitions by a consumer group) and the
 * relays' membership table (who is alive, so each takes its share).
 */
export function createBucketTables(t: string, ty: BucketTableTypes): string[] {
  const q = ty.quote;
  return [
    `ALTER TABLE ${q(t)} ADD COLUMN ${q('bucket')} ${ty.smallint} NULL`,
    `CREATE TABLE ${q(`${t}_bucket`)} (${q('bucket')} ${ty.smallint} NOT NULL PRIMARY KEY, ${q('owner')} ${ty.text} NULL, ` +
      `${q('token')} ${ty.text} NULL, ${q('expires_at')} ${ty.time} NULL)${ty.tableSuffix}`,
    `INSERT INTO ${q(`${t}_bucket`)} (${q('bucket')}) VALUES ${Array.from({ length: KEY_BUCKETS }, (_, i) => `(${i})`).join(', ')}`,
    `CREATE TABLE ${q(`${t}_relay`)} (${q('owner')} ${ty.text} NOT NULL PRIMARY KEY, ${q('expires_at')} ${ty.time} NOT NULL)${ty.tableSuffix}`,
  ];
}

/** @internal The fourth migration's down. */
export function dropBucketTables(t: string, ty: Pick<BucketTableTypes, 'quote'>): string[] {
  const q = ty.quote;
  return [`DROP TABLE IF EXISTS ${q(`${t}_relay`)}`, `DROP TABLE IF EXISTS ${q(`${t}_bucket`)}`, `ALTER TABLE ${q(t)} DROP COLUMN ${q('bucket')}`];
}
