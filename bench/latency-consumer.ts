// The consumer of workload 3, in a process of its own: the latency measured is the library's
// (commit → record readable by a consumer), not the cost of consuming in the application's process
// (kafkajs polls its request queue every millisecond on Node 24, tulios/kafkajs#1704). Prints
// TM_BENCH_READY once it has joined its group, then one line `i epochMs` per record of run `run`
// (epoch ms from performance.timeOrigin, comparable across processes on one machine), and stops
// when its stdin closes.
//
//   node bench/dist/latency-consumer.js <topic> <run>
import { createInterface } from 'node:readline';
import { startCounter } from './harness.js';

const [topic, run] = process.argv.slice(2) as [string, string];
const counter = await startCounter(topic, (value, at) => {
  const message = JSON.parse(value.toString()) as { i: number; run: string };
  if (message.run === run) process.stdout.write(`${message.i} ${performance.timeOrigin + at}\n`);
});
console.log('TM_BENCH_READY');
for await (const _line of createInterface({ input: process.stdin }));
await counter.stop();
process.exit(0);
