/** What the sixth migration needs of a database. */
export interface DelayedMessagesTypes {
  quote(identifier: string): string;
  /** The type of a time column. */
  time: string;
  partialIndexes: boolean;
  /** The statement that drops index `index` of `table`. */
  dropIndex(table: string, index: string): string;
}

/**
 * @internal DDL of the sixth migration (delayed messages): the due time of a delayed message, and
 * the indexes that find the DELAYED messages that are due (by due time) and list them (by write
 * order) without reading anything else. On MySQL/MariaDB (no partial indexes) one index on
 * (status, next_attempt_at); `(status, seq)` already lists them.
 */
export function createDelayedMessages(t: string, ty: DelayedMessagesTypes): string[] {
  const q = ty.quote;
  const delayed = `WHERE ${q('status')} = 'DELAYED'`;
  return [
    `ALTER TABLE ${q(t)} ADD COLUMN ${q('deliver_at')} ${ty.time} NULL`,
    ...(ty.partialIndexes
      ? [
          `CREATE INDEX ${q(`${t}_delayed_due_idx`)} ON ${q(t)} (${q('next_attempt_at')}) ${delayed}`,
          `CREATE INDEX ${q(`${t}_delayed_seq_idx`)} ON ${q(t)} (${q('seq')}) ${delayed}`,
        ]
      : [`CREATE INDEX ${q(`${t}_status_attempt_idx`)} ON ${q(t)} (${q('status')}, ${q('next_attempt_at')})`]),
  ];
}

/**
 * @internal The sixth migration's down. The messages still DELAYED become COMMITTED with their due
 * time as their next attempt: a relay of an earlier version reads only messages whose next attempt
 * is due, so they still wait until due (though each holds back the later messages of its key, as a
 * retry does there).
 */
export function dropDelayedMessages(t: string, ty: DelayedMessagesTypes): string[] {
  const q = ty.quote;
  const indexes = ty.partialIndexes ? [`${t}_delayed_seq_idx`, `${t}_delayed_due_idx`] : [`${t}_status_attempt_idx`];
  return [
    `UPDATE ${q(t)} SET ${q('status')} = 'COMMITTED' WHERE ${q('status')} = 'DELAYED'`,
    ...indexes.map((index) => ty.dropIndex(t, index)),
    `ALTER TABLE ${q(t)} DROP COLUMN ${q('deliver_at')}`,
  ];
}
