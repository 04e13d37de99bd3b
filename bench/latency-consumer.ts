// The consumer of workload 3, in a process of its own: the latency measured is the library's
// (commit → record readable by a consumer), not the cost of consuming in the application's process
// (kafkajs polls its request queue every millisecond on Node 24, tulios/kafkajs#1704). It reads
// from the topic's end as it was when it started (each run's consumer, reading from the beginning,
// would first read every earlier run's records and make this run's first ones late). Prints
// TM_BENCH_READY once it reads from there, then one line `i epochMs` per record of run `run`
// (epoch ms from performance.timeOrigin, comparable across processes on one machine), and stops
// when its stdin closes.
//
//   node bench/dist/latency-consumer.js <topic> <run>
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { kafka } from './harness.js';

const [topic, run] = process.argv.slice(2) as [string, string];
const admin = kafka().admin();
await admin.connect();
const ends = await admin.fetchTopicOffsets(topic);
await admin.disconnect();

const consumer = kafka().consumer({ groupId: `tm-bench-latency-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 5, heartbeatInterval: 500 });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: false });
let joined!: () => void;
const ready = new Promise<void>((resolve) => (joined = resolve));
consumer.on(consumer.events.GROUP_JOIN, () => joined());
await consumer.run({
  eachBatchAutoResolve: true,
  eachBatch: async ({ batch }) => {
    const at = performance.timeOrigin + performance.now();
    for (const record of batch.messages) {
      const message = JSON.parse(record.value?.toString() ?? '{}') as { i: number; run: string };
      if (message.run === run) process.stdout.write(`${message.i} ${at}\n`);
    }
  },
});
await ready;
for (const { partition, high } of ends) consumer.seek({ topic, partition, offset: high });
console.log('TM_BENCH_READY');
for await (const _line of createInterface({ input: process.stdin }));
await consumer.disconnect();
process.exit(0);
