// Probe behind bench/RESULTS.md, workload 2: the relay draining committed messages through Kafka
// on one client, alone in its process, for a CPU profile of where the relay's process spends
// its time when the downstream is real.
// node --cpu-prof bench/dist/probes/kafka-relay.js [count] [client] [retentionMs]
import { subscribe } from 'node:diagnostics_channel';
import type { KafkaClientName } from 'nestjs-transactional-message';
import { benchDatabase, createTopic, uniqueTopic } from '../harness.js';
import { drainWithRelay, seedCommitted } from '../workloads/relay-drain.js';

const count = Number(process.argv[2] ?? 100_000);
const client = (process.argv[3] ?? '@platformatic/kafka') as KafkaClientName;
const retentionMs = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
// How long each publish took (the relay's own measure, event batch.published) against the wall time.
const publishes: number[] = [];
subscribe('nestjs-transactional-message:batch.published', (event) => publishes.push((event as { durationMs: number }).durationMs));
const db = await benchDatabase();
try {
  const topic = uniqueTopic('probe-kafka');
  await createTopic(topic);
  await seedCommitted(db.dataSource, topic, count);
  const rate = await drainWithRelay(db.dataSource, topic, count, 500, 1, undefined, client, { retentionMs });
  console.log(`${count} messages through ${client}, retentionMs ${retentionMs ?? 'default'}: ${rate.toFixed(0)} msg/s`);
  const sorted = [...publishes].sort((a, b) => a - b);
  const sum = publishes.reduce((a, b) => a + b, 0);
  console.log(
    `  ${publishes.length} publishes, ${(sum / 1000).toFixed(2)} s in all of ${(count / rate).toFixed(2)} s; each: ` +
      `median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms, p90 ${sorted[Math.floor(sorted.length * 0.9)].toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`,
  );
} finally {
  await db.drop();
}
process.exit(0);
