// Probe: @platformatic/kafka 2.12's read_committed consumer drops committed records. One
// transactional producer on one partition: a transaction aborted with a record, two committed,
// one aborted after the partition was added but before any record was written (a record over the
// topic's max.message.bytes is refused), one committed. The consumer's filter keeps one range per
// producer id, from the listed aborted transaction's first offset to the *last* ABORT marker of
// that producer in the fetch, so the two committed transactions between are dropped.
// Expected: committed-2, committed-3, committed-4. Run with the broker up:
//   node docs/probes/read-committed-platformatic-dataless.mjs
import kafkajs from 'kafkajs';
import { Consumer, FetchIsolationLevels, stringDeserializers } from '@platformatic/kafka';
const brokers = [process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`];
const kafka = new kafkajs.Kafka({ clientId: 'probe', brokers, logLevel: kafkajs.logLevel.NOTHING });
const topic = `probe-dataless-${Date.now()}`;
const admin = kafka.admin(); await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] }], waitForLeaders: true });
await admin.disconnect();
const producer = kafka.producer({ transactionalId: `probe-dataless-${Date.now()}`, idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
for (const [value, end] of [['aborted-1', 'abort'], ['committed-2', 'commit'], ['committed-3', 'commit'], [Buffer.alloc(10_000), 'abort'], ['committed-4', 'commit']]) {
  const tx = await producer.transaction();
  await tx.send({ topic, acks: -1, messages: [{ partition: 0, value }] }).catch(() => undefined);
  await (end === 'abort' ? tx.abort() : tx.commit());
}
await producer.disconnect();
const consumer = new Consumer({ clientId: 'probe', groupId: `probe-${Date.now()}`, bootstrapBrokers: brokers, isolationLevel: FetchIsolationLevels.READ_COMMITTED, deserializers: stringDeserializers });
const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 500 });
const seen = [];
const timer = setTimeout(() => stream.close(), 5000);
for await (const m of stream) { seen.push(m.value); if (seen.length >= 3) break; }
clearTimeout(timer);
await stream.close().catch(() => {});
await consumer.close(true);
console.log(JSON.stringify({ seen, expected: ['committed-2', 'committed-3', 'committed-4'] }));
