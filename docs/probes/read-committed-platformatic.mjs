// Probe: one transactional producer (one producer id), three transactions on one partition:
// abort, commit, abort, commit. A read_committed consumer must return only the committed records.
import { Admin, Consumer, Producer, FetchIsolationLevels, stringSerializers, stringDeserializers } from '@platformatic/kafka';
const brokers = [process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`];
const topic = `probe-abort-${Date.now()}`;
const admin = new Admin({ clientId: 'probe', bootstrapBrokers: brokers });
await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
await admin.close();
const producer = new Producer({ clientId: 'probe', bootstrapBrokers: brokers, idempotent: true, transactionalId: `probe-tx-${Date.now()}`, serializers: stringSerializers });
const plan = ['abort', 'commit', 'abort', 'commit'];
for (const [i, end] of plan.entries()) {
  const tx = await producer.beginTransaction();
  await tx.send({ messages: [{ topic, partition: 0, key: `k${i}`, value: `${end}-${i}` }] });
  await (end === 'abort' ? tx.abort() : tx.commit());
}
await producer.close();
const consumer = new Consumer({ clientId: 'probe', groupId: `probe-${Date.now()}`, bootstrapBrokers: brokers, isolationLevel: FetchIsolationLevels.READ_COMMITTED, deserializers: stringDeserializers });
const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 500 });
const seen = [];
const timer = setTimeout(() => stream.close(), 5000);
for await (const m of stream) { seen.push(m.value); if (seen.length >= 4) break; }
clearTimeout(timer);
await stream.close().catch(() => {});
await consumer.close(true);
console.log(JSON.stringify({ seen, expected: ['commit-1', 'commit-3'] }));
