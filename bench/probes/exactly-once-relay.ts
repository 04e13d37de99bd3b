// Probe behind bench/RESULTS.md (issue 23): the relay draining committed messages through Kafka at
// least once and with kafka.exactlyOnce, side by side in one run, on each client; rounds alternate
// which goes first. Each drain starts a fresh application on a fresh table of `count` committed
// messages (1,000 keys) and ends when none is left COMMITTED.
// node bench/dist/probes/exactly-once-relay.js [count] [rounds] [batchSize]
import { randomBytes } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';
import type { KafkaClientName } from 'nestjs-transactional-message';
import { benchDatabase, createTopic, uniqueTopic } from '../harness.js';
import { drainRates, seedCommitted } from '../workloads/relay-drain.js';

const count = Number(process.argv[2] ?? 50_000);
const rounds = Number(process.argv[3] ?? 3);
const batchSize = Number(process.argv[4] ?? 500);
const clients: KafkaClientName[] = ['@platformatic/kafka', 'kafkajs'];

// How long each publish took (the relay's measure, event batch.published), per drain.
let publishes: number[] = [];
subscribe('nestjs-transactional-message:batch.published', (event) => publishes.push((event as { durationMs: number }).durationMs));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function drain(client: KafkaClientName, exactlyOnce: boolean): Promise<number> {
  publishes = [];
  const db = await benchDatabase();
  try {
    const topic = uniqueTopic('probe-eos');
    await createTopic(topic);
    await seedCommitted(db.dataSource, topic, count);
    const run = randomBytes(4).toString('hex');
    const kafka = exactlyOnce ? { exactlyOnce: { transactionalIdPrefix: `tm-bench.${run}`, marksTopic: `tm-bench.marks.${run}` } } : {};
    const rate = (await drainRates(db.dataSource, topic, count, batchSize, 1, undefined, client, {}, kafka)).fromFirstPublish;
    const total = publishes.reduce((a, b) => a + b, 0);
    console.log(`  ${client} ${exactlyOnce ? 'exactly once' : 'at least once'}: ${publishes.length} publishes, median ${median(publishes).toFixed(1)} ms, first ${publishes[0]?.toFixed(0)} ms, max ${Math.max(...publishes).toFixed(0)} ms, ${(total / 1000).toFixed(2)} s publishing of ${(count / rate).toFixed(2)} s`);
    return rate;
  } finally {
    await db.drop();
  }
}

for (const client of clients) {
  const rows: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false];
    const rate: Record<string, number> = {};
    for (const eos of order) rate[String(eos)] = await drain(client, eos);
    rows.push(`${rate.false.toFixed(0)} / ${rate.true.toFixed(0)} (ratio ${(rate.true / rate.false).toFixed(2)})`);
    console.log(`${client} round ${round + 1}: at least once ${rate.false.toFixed(0)} msg/s, exactly once ${rate.true.toFixed(0)} msg/s, ratio ${(rate.true / rate.false).toFixed(2)}`);
  }
  console.log(`${client}: ${rows.join('; ')}`);
}
process.exit(0);
