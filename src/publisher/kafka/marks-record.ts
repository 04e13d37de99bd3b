/**
 * @internal The marks record of exactly-once delivery (docs/exactly-once.md): one
 * per Kafka transaction, on the slot's partition of the marks topic, in the same transaction as the
 * messages. It lists the ids of every message of the slot that Kafka committed and the database is
 * not yet known to have marked: this transaction's, plus those of earlier transactions whose mark
 * has not completed (none in the normal case). So the slot's last committed marks record alone
 * tells a new owner what to mark instead of publishing again, and the topic can be compacted by
 * slot. `sequence` grows by one per transaction of the slot (a new owner goes on from the last
 * one). Applying a record twice is harmless: every id in it is in Kafka.
 */
export interface MarksRecord {
  slot: number;
  sequence: number;
  ids: string[];
}

const VERSION = 1;

/** @internal The record's key (compaction keeps the last one per slot) and value. */
export function encodeMarksRecord(marks: MarksRecord): { key: Buffer; value: Buffer } {
  if (!Number.isInteger(marks.slot) || marks.slot < 0) throw new RangeError(`marks record: slot must be a whole number ≥ 0, got ${marks.slot}`);
  if (!Number.isSafeInteger(marks.sequence) || marks.sequence < 1) throw new RangeError(`marks record: sequence must be a whole number ≥ 1, got ${marks.sequence}`);
  return { key: Buffer.from(`slot-${marks.slot}`), value: Buffer.from(JSON.stringify({ v: VERSION, slot: marks.slot, sequence: marks.sequence, ids: marks.ids })) };
}

/**
 * @internal The marks record a value holds. A value this version cannot read (another version of
 * the library, or not a marks record) is an error naming the offset: a new owner must not guess
 * what Kafka committed.
 */
export function decodeMarksRecord(value: Buffer | null, where: string): MarksRecord {
  let parsed: unknown;
  try {
    parsed = value ? JSON.parse(value.toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  const r = parsed as { v?: unknown; slot?: unknown; sequence?: unknown; ids?: unknown } | undefined;
  if (
    !r ||
    r.v !== VERSION ||
    !Number.isInteger(r.slot) ||
    !Number.isSafeInteger(r.sequence) ||
    !Array.isArray(r.ids) ||
    !r.ids.every((id) => typeof id === 'string')
  ) {
    throw new Error(`The marks record at ${where} is not one this version reads (version ${VERSION}): ${value ? value.toString('utf8').slice(0, 200) : 'no value'}`);
  }
  return { slot: r.slot as number, sequence: r.sequence as number, ids: r.ids as string[] };
}
