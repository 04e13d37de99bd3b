// kafkajs 2.2.4's read_committed consumer and two transactions aborted in the other order than
// they began, on one partition: producer A writes a-0 (offset 0), producer B writes b-1 (offset 1),
// B aborts (its marker at 2), then A aborts (3); producer C commits c-4. Both aborted transactions
// are in the fetch's aborted list, ordered by their markers (B, then A), not by their first offsets.
// kafkajs' filterAbortedMessages takes the list as ordered by first offset: at offset 0 it looks
// at B's (first offset 1), does not start ignoring A, and returns a-0. Expected: only c-4.
// Run with the broker up: node docs/probes/read-committed-kafkajs-interleaved.mjs
import kafkajs from 'kafkajs';
const { Kafka, logLevel } = kafkajs;
const kafka = new Kafka({ clientId: 'probe', brokers: [process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`], logLevel: logLevel.NOTHING });
const run = Date.now();
const topic = `probe-interleaved-kjs-${run}`;
const admin = kafka.admin(); await admin.connect(); await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }); await admin.disconnect();
const producer = async (name) => {
  const p = kafka.producer({ transactionalId: `probe-interleaved-${name}-${run}`, idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  return p;
};
const [a, b, c] = [await producer('a'), await producer('b'), await producer('c')];
const txA = await a.transaction();
await txA.send({ topic, messages: [{ partition: 0, value: 'a-0' }] });
const txB = await b.transaction();
await txB.send({ topic, messages: [{ partition: 0, value: 'b-1' }] });
await txB.abort();
await txA.abort();
const txC = await c.transaction();
await txC.send({ topic, messages: [{ partition: 0, value: 'c-4' }] });
await txC.commit();
for (const p of [a, b, c]) await p.disconnect();
const consumer = kafka.consumer({ groupId: `probe-interleaved-${run}`, readUncommitted: false });
await consumer.connect(); await consumer.subscribe({ topic, fromBeginning: true });
const seen = [];
await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()); } });
await new Promise((r) => setTimeout(r, 6000));
await consumer.disconnect();
console.log(JSON.stringify({ seen, expected: ['c-4'] }));
