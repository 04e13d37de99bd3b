// The same plan with kafkajs 2.2.4: abort, commit, abort, commit from one transactional producer;
// a read_committed consumer (kafkajs default) must see only the committed records.
import kafkajs from 'kafkajs';
const { Kafka, logLevel } = kafkajs;
const kafka = new Kafka({ clientId: 'probe', brokers: [process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`], logLevel: logLevel.NOTHING });
const topic = `probe-abort-kjs-${Date.now()}`;
const admin = kafka.admin(); await admin.connect(); await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }); await admin.disconnect();
const producer = kafka.producer({ transactionalId: `probe-kjs-tx-${Date.now()}`, idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
for (const [i, end] of ['abort', 'commit', 'abort', 'commit'].entries()) {
  const tx = await producer.transaction();
  await tx.send({ topic, messages: [{ partition: 0, key: `k${i}`, value: `${end}-${i}` }] });
  await (end === 'abort' ? tx.abort() : tx.commit());
}
await producer.disconnect();
const consumer = kafka.consumer({ groupId: `probe-kjs-${Date.now()}`, readUncommitted: false });
await consumer.connect(); await consumer.subscribe({ topic, fromBeginning: true });
const seen = [];
await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()); } });
await new Promise((r) => setTimeout(r, 6000));
await consumer.disconnect();
console.log(JSON.stringify({ seen, expected: ['commit-1', 'commit-3'] }));
