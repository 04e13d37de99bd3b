import { loadPlatformaticKafka } from './platformatic.publisher.js';

/**
 * @internal The committed records of a run of a partition's record batches, decided from the batches
 * themselves: what a `read_committed` reader must return, whatever its client does. A batch written
 * in a transaction (attribute bit 4) belongs to its producer's transaction that the *next* control
 * batch of the same producer id (bit 5) ends, COMMIT or ABORT: within a partition a producer has
 * one transaction open at a time, and its marker follows its records. Records outside
 * transactions are committed; control batches are not records.
 *
 * Why the library decides it itself: @platformatic/kafka 2.12's read_committed consumer keeps one
 * aborted range per producer id, so a second aborted transaction of one producer in a fetch hides
 * the first, whose records it returns (docs/exactly-once.md; kafkajs 2.2.4 gets it right). A
 * transactional id keeps its producer id across epochs, so every takeover makes that case.
 */
export interface BatchOfRecords {
  firstOffset: bigint;
  lastOffsetDelta?: number;
  attributes: number;
  producerId: bigint;
  records: readonly { offsetDelta: number; key: Buffer | null; value: Buffer | null }[];
}

/** @internal One committed record with its offset. */
export interface CommittedRecord {
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
}

const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;
/** A control record's key: version (int16), then type (int16): 0 ABORT, 1 COMMIT. */
const ABORT = 0;

/**
 * The committed records of `batches` (in offset order), and where to read again when the run ends
 * inside a transaction whose marker it does not hold (`undecidedFrom`: the first record of that
 * transaction; nothing from there on is returned). Read up to the last stable offset, every
 * transaction has its marker; a fetch cut short by its size limit may not.
 */
export function committedRecords(batches: readonly BatchOfRecords[]): { records: CommittedRecord[]; undecidedFrom?: bigint } {
  // Backwards: the end of the transaction each producer's batches belong to is the next control batch of that producer.
  const fate = new Array<'committed' | 'aborted' | 'undecided' | 'control'>(batches.length);
  const nextMarker = new Map<bigint, 'committed' | 'aborted'>();
  for (let i = batches.length - 1; i >= 0; i--) {
    const batch = batches[i];
    if (batch.attributes & CONTROL) {
      const key = batch.records[0]?.key;
      nextMarker.set(batch.producerId, key && key.length >= 4 && key.readInt16BE(2) === ABORT ? 'aborted' : 'committed');
      fate[i] = 'control';
    } else if (batch.attributes & TRANSACTIONAL) {
      fate[i] = nextMarker.get(batch.producerId) ?? 'undecided';
    } else {
      fate[i] = 'committed';
    }
  }
  const records: CommittedRecord[] = [];
  for (let i = 0; i < batches.length; i++) {
    if (fate[i] === 'undecided') return { records, undecidedFrom: batches[i].firstOffset };
    if (fate[i] !== 'committed') continue;
    for (const r of batches[i].records) records.push({ offset: batches[i].firstOffset + BigInt(r.offsetDelta), key: r.key, value: r.value });
  }
  return { records };
}

/** @internal The largest fetch the reader grows to when one transaction does not fit (64 MiB). */
const MAX_FETCH_BYTES = 64 * 1024 * 1024;

/**
 * @internal Reads one partition's committed records from `fromOffset` up to its last stable offset
 * with @platformatic/kafka's fetch at READ_UNCOMMITTED (every batch, markers included), deciding
 * what is committed with {@link committedRecords}. Not at READ_COMMITTED: @platformatic/kafka then
 * filters the answer itself, and its filter both leaves aborted records in and removes committed
 * ones (one range per producer id, from an aborted transaction's first offset to the last ABORT
 * marker of that producer in the answer: a producer fenced and then aborted again loses the
 * committed transactions between; found by the exactly-once soak, docs/exactly-once.md). The
 * recovery read of exactly-once delivery.
 */
export async function readCommittedPartition(
  consumer: import('@platformatic/kafka').Consumer<Buffer, Buffer, Buffer, Buffer>,
  topic: string,
  partition: number,
  fromOffset: bigint,
  fetchBytes = 1024 * 1024,
  /** Where to stop when the caller knows the last stable offset: nothing is fetched from there on (a fetch there waits for records). */
  until?: bigint,
): Promise<CommittedRecord[]> {
  const { FetchIsolationLevels } = await loadPlatformaticKafka();
  const found: CommittedRecord[] = [];
  let offset = fromOffset;
  let bytes = fetchBytes;
  for (;;) {
    if (until !== undefined && offset >= until) return found;
    const metadata = await consumer.metadata({ topics: [topic] });
    const topicMetadata = metadata.topics.get(topic);
    const leader = topicMetadata?.partitions[partition];
    if (!topicMetadata || !leader) throw new Error(`Kafka knows no partition ${partition} of topic ${topic}`);
    const response = await consumer.fetch({
      node: leader.leader,
      topics: [{ topicId: topicMetadata.id, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: bytes, currentLeaderEpoch: leader.leaderEpoch, lastFetchedEpoch: -1 }] }],
      isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
      maxBytes: bytes,
      minBytes: 1,
      maxWaitTime: 100,
    });
    const answer = response.responses[0]?.partitions.find((p) => p.partitionIndex === partition);
    // The client fetches in a session (KIP-227): a partition with nothing to return at this offset
    // and no change since the previous answer is left out of the answer. Records below the last
    // stable offset are always returned, so an answer without the partition means: nothing more.
    if (!answer) return found;
    if (answer.errorCode !== 0) throw new Error(`The fetch of ${topic}/${partition} at offset ${offset} failed with Kafka error code ${answer.errorCode}`);
    // What a read_committed reader may see ends at the last stable offset (the first record of a
    // transaction still open); batches beyond it are read only for the markers they hold.
    const stable = answer.lastStableOffset;
    if (offset >= stable) return found;
    const batches = answer.records ?? [];
    const { records, undecidedFrom } = committedRecords(batches);
    for (const r of records) if (r.offset >= offset && r.offset < stable) found.push(r);
    const last = batches.at(-1);
    const end = undecidedFrom ?? (last ? last.firstOffset + BigInt(last.lastOffsetDelta) + 1n : offset);
    if (end >= stable) return found;
    if (end > offset) {
      offset = end;
      bytes = fetchBytes;
    } else if (bytes < MAX_FETCH_BYTES) {
      bytes *= 2; // the transaction at `offset` does not fit, marker included: fetch more at once
    } else {
      throw new Error(`A transaction at ${topic}/${partition} offset ${offset} does not fit in a ${MAX_FETCH_BYTES}-byte fetch`);
    }
  }
}

/**
 * @internal The last committed record of a partition (undefined when it holds none): the recovery
 * read of a slot's marks (docs/exactly-once.md), whose last committed record alone says what Kafka
 * committed and the database may not know. Reads back from the end in growing windows (16, 64, ...
 * offsets), so a partition that compaction has not cleaned yet costs little.
 */
export async function readLastCommitted(
  consumer: import('@platformatic/kafka').Consumer<Buffer, Buffer, Buffer, Buffer>,
  topic: string,
  partition: number,
): Promise<CommittedRecord | undefined> {
  const { FetchIsolationLevels } = await loadPlatformaticKafka();
  const offsetAt = async (timestamp: bigint) => {
    const offsets = await consumer.listOffsets({ topics: [topic], timestamp, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
    const offset = offsets.get(topic)?.[partition];
    if (offset === undefined) throw new Error(`Kafka knows no partition ${partition} of topic ${topic}`);
    return offset;
  };
  // -2: the log's start; -1: its end for a read_committed reader (the last stable offset).
  const [start, end] = [await offsetAt(-2n), await offsetAt(-1n)];
  for (let window = 16n; ; window *= 4n) {
    const from = end - window > start ? end - window : start;
    const last = (await readCommittedPartition(consumer, topic, partition, from, undefined, end)).at(-1);
    if (last || from === start) return last;
  }
}
