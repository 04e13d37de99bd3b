/** @internal Key buckets of a message table; a constant of the table. */
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
 * @internal DDL of the fourth migration: the message's key bucket (written with every message;
 * NULL for rows written before, or by instances of versions that wrote it only on request), the bucket lease
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

/**
 * @internal The owner under which the fifth migration announces a relay that never expires in
 * `<table>_relay`: a relay of the row-lease design (versions before key buckets became the only
 * design) asks that table before every claim and claims nothing while any relay announces itself
 * there, so from the migration on it delivers nothing. Relays of this version leave it out of
 * their count.
 */
export const ROW_LEASES_RETIRED = 'retired:row-lease-relays';

/** What the fifth migration needs of a database: partial indexes or not, the latest time it can store. */
export interface RetirementTypes {
  quote(identifier: string): string;
  partialIndexes: boolean;
  /** A time literal later than any clock reading, in the column's format. */
  forever: string;
}

/**
 * @internal DDL of the fifth migration (key buckets become the only relay design): the marker that
 * stops relays of the row-lease design, an index of the live messages written without a bucket
 * (by instances of earlier versions; relays fill their bucket in batches), and an index of the
 * committed messages a row-lease relay still holds (a relay of this version reads nothing while
 * any lease of theirs is live).
 */
export function retireRowLeases(t: string, ty: RetirementTypes): string[] {
  const q = ty.quote;
  const live = `${q('status')} IN ('HALF', 'COMMITTED', 'DEAD', 'CHECK_EXHAUSTED')`;
  return [
    ty.partialIndexes
      ? `CREATE INDEX ${q(`${t}_unbucketed_idx`)} ON ${q(t)} (${q('seq')}) WHERE ${q('bucket')} IS NULL AND ${live}`
      : `CREATE INDEX ${q(`${t}_unbucketed_idx`)} ON ${q(t)} (${q('bucket')}, ${q('seq')})`,
    ty.partialIndexes
      ? `CREATE INDEX ${q(`${t}_row_lease_idx`)} ON ${q(t)} (${q('lease_expires_at')}) WHERE ${q('status')} = 'COMMITTED' AND ${q('lease_token')} IS NOT NULL`
      : `CREATE INDEX ${q(`${t}_row_lease_idx`)} ON ${q(t)} (${q('lease_expires_at')})`,
    `INSERT INTO ${q(`${t}_relay`)} (${q('owner')}, ${q('expires_at')}) VALUES ('${ROW_LEASES_RETIRED}', ${ty.forever})`,
  ];
}

/** @internal The fifth migration's down: relays of the row-lease design may claim again. */
export function unretireRowLeases(t: string, ty: Pick<RetirementTypes, 'quote' | 'partialIndexes'>, dropIndex: (table: string, index: string) => string): string[] {
  const q = ty.quote;
  return [
    `DELETE FROM ${q(`${t}_relay`)} WHERE ${q('owner')} = '${ROW_LEASES_RETIRED}'`,
    dropIndex(t, `${t}_row_lease_idx`),
    dropIndex(t, `${t}_unbucketed_idx`),
  ];
}
