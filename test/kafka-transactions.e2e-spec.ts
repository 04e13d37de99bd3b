// The transactional producer (src/publisher/kafka/transactional-producer.ts), the building block of
// exactly-once delivery into Kafka (docs/exactly-once.md), on both clients against the real broker.
// What the design relies on: committed records visible to read_committed consumers; a takeover of
// the transactional id aborts the previous holder's open transaction (its records written to the
// log, never visible) and fences it (its later sends fail, told apart by isProducerFenced); a
// transactional id the broker already knows can be taken again (restarts, takeovers).
import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { KAFKA_CLIENTS, type KafkaClientName } from '../src/index.js';
import { readCommittedPartition, readLastCommitted } from '../src/publisher/kafka/committed-records.js';
import { decodeMarksRecord, encodeMarksRecord } from '../src/publisher/kafka/marks-record.js';
import { createTransactionalKafkaProducer, isProducerFenced, type TransactionalKafkaProducer } from '../src/publisher/kafka/transactional-producer.js';
import { createTopics, KAFKA_BROKERS, testKafka, TestConsumer, uniqueTopic } from './support/kafka.js';

const record = (topic: string, value: string) => ({ topic, key: Buffer.from('k'), value: Buffer.from(value) });

/**
 * The topic's end offset for read_committed readers (one partition; kafkajs' admin asks with that
 * isolation): the last stable offset, which counts aborted records and transaction markers.
 */
async function endOffset(topic: string): Promise<number> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const [partition] = await admin.fetchTopicOffsets(topic);
    return Number(partition.high);
  } finally {
    await admin.disconnect();
  }
}

// The clients' own log lines go to Nest's logger at debug; no application here sets its levels.
beforeAll(() => Logger.overrideLogger(['error', 'warn']));

describe.each(KAFKA_CLIENTS)('the transactional producer on %s (real Kafka)', (client: KafkaClientName) => {
  const producers: TransactionalKafkaProducer[] = [];
  const consumers: TestConsumer[] = [];
  const producer = (transactionalId: string) => {
    const p = createTransactionalKafkaProducer(client, { brokers: KAFKA_BROKERS }, transactionalId, 'tm-test');
    producers.push(p);
    return p;
  };
  const readCommitted = async (topic: string) => {
    const c = await new TestConsumer([topic]).start(); // kafkajs, read_committed (its default)
    consumers.push(c);
    return c;
  };

  afterEach(async () => {
    for (const p of producers.splice(0)) await p.close();
    for (const c of consumers.splice(0)) await c.stop();
  });

  it('commits: a read_committed consumer sees every record of each transaction, in order', async () => {
    const topic = uniqueTopic('tx-commit');
    await createTopics([topic], 1);
    const p = producer(`tm-test-${randomBytes(4).toString('hex')}`);
    await p.start();
    await p.send([record(topic, 'a1'), record(topic, 'a2'), record(topic, 'a3')]);
    await p.send([record(topic, 'b1'), record(topic, 'b2')]);
    const consumer = await readCommitted(topic);
    await consumer.waitFor('the five committed records', (r) => r.length >= 5);
    expect(consumer.of(topic).map((r) => r.value.toString())).toEqual(['a1', 'a2', 'a3', 'b1', 'b2']);
  });

  it('a takeover fences the previous holder: its later sends fail as fenced and write nothing visible', async () => {
    const topic = uniqueTopic('tx-fence');
    await createTopics([topic], 1);
    const id = `tm-test-${randomBytes(4).toString('hex')}`;
    const first = producer(id);
    await first.start();
    await first.send([record(topic, 'first-1')]);
    const second = producer(id); // the same transactional id: a known one, taken over
    await second.start();
    const refused = await first.send([record(topic, 'zombie')]).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeDefined();
    expect(isProducerFenced(refused)).toBe(true);
    await second.send([record(topic, 'second-1')]);
    const consumer = await readCommitted(topic);
    await consumer.waitFor("the new holder's record", (r) => r.some((x) => x.value.toString() === 'second-1'));
    expect(consumer.of(topic).map((r) => r.value.toString())).toEqual(['first-1', 'second-1']);
  });

  it("a takeover aborts the previous holder's open transaction: its records are in the log, never visible, and its commit is refused", async () => {
    const topic = uniqueTopic('tx-open');
    await createTopics([topic], 1);
    const id = `tm-test-${randomBytes(4).toString('hex')}`;
    // The previous holder, as a crashed or frozen relay leaves it: a transaction begun, a record written, no end.
    const zombie = testKafka().producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    await zombie.connect();
    try {
      const open = await zombie.transaction();
      await open.send({ topic, acks: -1, messages: [{ key: 'k', value: 'never-visible' }] });
      // The open transaction holds the partition's last stable offset where it began.
      expect(await endOffset(topic)).toBe(0);

      const next = producer(id);
      await next.start(); // waits while the coordinator aborts the open transaction
      await next.send([record(topic, 'after-takeover')]);

      const commit = await open.commit().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isProducerFenced(commit)).toBe(true);
      const consumer = await readCommitted(topic);
      await consumer.waitFor("the new holder's record", (r) => r.some((x) => x.value.toString() === 'after-takeover'));
      expect(consumer.of(topic).map((r) => r.value.toString())).toEqual(['after-takeover']);
      // The aborted record, its abort marker, the new record and its commit marker (the empty
      // fencing transaction writes nothing): without the aborted record it would be 2.
      expect(await endOffset(topic)).toBeGreaterThanOrEqual(4);
    } finally {
      await zombie.disconnect().catch(() => undefined);
    }
  });
});

describe('isProducerFenced', () => {
  it('tells a fencing error of either client from others', () => {
    expect(isProducerFenced(new Error('connection closed'))).toBe(false);
    expect(isProducerFenced(Object.assign(new Error('x'), { type: 'NOT_LEADER_FOR_PARTITION' }))).toBe(false);
    expect(isProducerFenced(Object.assign(new Error('x'), { type: 'PRODUCER_FENCED' }))).toBe(true);
    expect(isProducerFenced({ errors: [{ apiId: 'INVALID_PRODUCER_EPOCH' }] })).toBe(true);
  });
});

describe("the recovery read of a partition's committed records (@platformatic/kafka fetch, real Kafka)", () => {
  it('returns exactly the committed records where the client\'s own read_committed filter returns an aborted one, also across many small fetches', async () => {
    const { Consumer, Producer, stringSerializers } = await import('@platformatic/kafka');
    const topic = uniqueTopic('tx-read');
    await createTopics([topic], 1);
    // One transactional id, so one producer id: transactions abort, commit, abort, commit, ... (docs/probes/read-committed-platformatic.mjs).
    const producer = new Producer({ clientId: 'tm-test', bootstrapBrokers: KAFKA_BROKERS, idempotent: true, transactionalId: `tm-test-${randomBytes(4).toString('hex')}`, producerId: -1n, producerEpoch: -1, serializers: stringSerializers });
    const expected: string[] = [];
    const plain = testKafka().producer();
    await plain.connect();
    try {
      for (let i = 0; i < 12; i++) {
        if (i === 6) {
          // A record outside any transaction, between them: committed.
          await plain.send({ topic, acks: -1, messages: [{ partition: 0, key: 'k', value: 'plain' }] });
          expected.push('plain');
        }
        const transaction = await producer.beginTransaction();
        const values = [0, 1, 2].map((j) => `${i % 2 ? 'commit' : 'abort'}-${i}-${j}`);
        await transaction.send({ messages: values.map((value) => ({ topic, partition: 0, key: 'k', value })) });
        if (i % 2) {
          await transaction.commit();
          expected.push(...values);
        } else {
          await transaction.abort();
        }
      }
    } finally {
      await producer.close();
      await plain.disconnect();
    }
    const consumer = new Consumer({ clientId: 'tm-test', groupId: `tm-test-${randomBytes(4).toString('hex')}`, bootstrapBrokers: KAFKA_BROKERS });
    try {
      for (const fetchBytes of [1024 * 1024, 200]) {
        const read = await readCommittedPartition(consumer, topic, 0, 0n, fetchBytes);
        expect(read.map((r) => r.value?.toString())).toEqual(expected);
        expect(read.every((r, i) => i === 0 || r.offset > read[i - 1].offset)).toBe(true);
        // From the middle: only what lies at or after the offset.
        const from = read[4].offset;
        expect((await readCommittedPartition(consumer, topic, 0, from, fetchBytes)).map((r) => r.offset)).toEqual(read.slice(4).map((r) => r.offset));
      }
    } finally {
      await consumer.close(true);
    }
  });
});

describe("the recovery read where @platformatic/kafka's read_committed filter removes committed records", () => {
  it('returns the committed transactions between an aborted one and a later ABORT marker of the same producer that holds no record', async () => {
    const { Consumer } = await import('@platformatic/kafka');
    const topic = uniqueTopic('tx-read-dataless');
    // Records over 2,000 bytes are refused by the partition, after the transaction added it: that
    // transaction's abort writes an ABORT marker with no record of its own before it (as a send cut
    // by a fence or a broker's death does; found by the exactly-once soak).
    await createTopics([topic], 1, KAFKA_BROKERS, [{ name: 'max.message.bytes', value: '2000' }]);
    const producer = testKafka().producer({ transactionalId: `tm-test-dataless-${randomBytes(4).toString('hex')}`, idempotent: true, maxInFlightRequests: 1 });
    const inTransaction = async (value: string | Buffer, end: 'commit' | 'abort') => {
      const transaction = await producer.transaction();
      try {
        await transaction.send({ topic, acks: -1, messages: [{ partition: 0, key: 'k', value }] });
      } catch {
        // refused (too large): the partition was added to the transaction, nothing written
      }
      await (end === 'commit' ? transaction.commit() : transaction.abort());
    };
    await producer.connect();
    try {
      await inTransaction('aborted-1', 'abort'); // listed as aborted by every fetch that reaches its marker
      await inTransaction('committed-2', 'commit');
      await inTransaction('committed-3', 'commit');
      await inTransaction(Buffer.alloc(10_000), 'abort'); // an ABORT marker with no record before it
      await inTransaction('committed-4', 'commit');
    } finally {
      await producer.disconnect();
    }
    const consumer = new Consumer({ clientId: 'tm-test', groupId: `tm-test-${randomBytes(4).toString('hex')}`, bootstrapBrokers: KAFKA_BROKERS });
    try {
      const read = await readCommittedPartition(consumer, topic, 0, 0n);
      expect(read.map((r) => r.value?.toString())).toEqual(['committed-2', 'committed-3', 'committed-4']);
    } finally {
      await consumer.close(true);
    }
  });
});

describe.each(KAFKA_CLIENTS)("a takeover's recovery read of the slot's marks, written with %s (real Kafka)", (client: KafkaClientName) => {
  it("finds the last committed marks record behind aborted ones and the fenced holder's open one; none in an empty slot", async () => {
    const { Consumer } = await import('@platformatic/kafka');
    const [data, marks] = [uniqueTopic('eo-data'), uniqueTopic('eo-marks')];
    await createTopics([data], 1);
    await createTopics([marks], 2); // slots 0 and 1
    const id = `tm-test-slot0-${randomBytes(4).toString('hex')}`;
    const inTransaction = (sequence: number) => {
      const messageId = `m-${sequence}`;
      return [{ topic: data, key: Buffer.from('k'), value: Buffer.from(messageId) }, { topic: marks, partition: 0, ...encodeMarksRecord({ slot: 0, sequence, ids: [messageId] }) }];
    };
    const holder = createTransactionalKafkaProducer(client, { brokers: KAFKA_BROKERS }, id, 'tm-test');
    await holder.start();
    for (let sequence = 1; sequence <= 40; sequence++) await holder.send(inTransaction(sequence));
    await holder.close();
    // The holder's successor in time: ten transactions aborted (20 offsets at the end with nothing
    // committed: the read must look further back than its first window), then frozen mid-transaction.
    const zombie = testKafka().producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    await zombie.connect();
    for (let sequence = 41; sequence <= 50; sequence++) {
      const aborted = await zombie.transaction();
      await aborted.send({ topic: marks, acks: -1, messages: [{ partition: 0, ...encodeMarksRecord({ slot: 0, sequence, ids: [`m-${sequence}`] }) }] });
      await aborted.abort();
    }
    const open = await zombie.transaction();
    await open.send({ topic: marks, acks: -1, messages: [{ partition: 0, ...encodeMarksRecord({ slot: 0, sequence: 51, ids: ['m-51'] }) }] });
    const next = createTransactionalKafkaProducer(client, { brokers: KAFKA_BROKERS }, id, 'tm-test');
    const consumer = new Consumer({ clientId: 'tm-test', groupId: `tm-test-${randomBytes(4).toString('hex')}`, bootstrapBrokers: KAFKA_BROKERS });
    try {
      await next.start(); // fence: the open transaction is aborted
      const last = await readLastCommitted(consumer, marks, 0);
      expect(last).toBeDefined();
      expect(decodeMarksRecord(last!.value, `${marks}/0@${last!.offset}`)).toEqual({ slot: 0, sequence: 40, ids: ['m-40'] });
      expect(await readLastCommitted(consumer, marks, 1)).toBeUndefined();
    } finally {
      await consumer.close(true);
      await next.close();
      await zombie.disconnect().catch(() => undefined);
    }
  });
});
