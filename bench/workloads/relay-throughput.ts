import { benchDatabase, createTopic, fmt, uniqueTopic } from '../harness.js';
import { drainRaw, drainWithRelay, seedCommitted } from './relay-drain.js';

/** Workload 2: 100,000 committed messages drained by the relay, against raw kafkajs from memory. */
export async function relayThroughput(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = Number(process.env.TM_BENCH_COUNT ?? (quick ? 20_000 : 100_000));
  const db = await benchDatabase();
  try {
    const topic = uniqueTopic('throughput');
    await createTopic(topic);
    await seedCommitted(db.dataSource, topic, count);
    const relay = await drainWithRelay(db.dataSource, topic, count);
    const raw = await drainRaw(count);
    const ratio = relay / raw;
    return {
      lines: [
        `Workload 2 — relay throughput (${fmt(count)} committed messages, ~200-byte JSON, 1,000 keys, 6 partitions, batches of 500, acks all)`,
        `  relay ${fmt(relay)} msg/s, raw kafkajs ${fmt(raw)} msg/s, ratio ${fmt(ratio, 2)}  (target ≥ 0.70: ${ratio >= 0.7 ? 'met' : 'MISSED'})`,
      ],
      ratios: { 'relay/raw': ratio },
    };
  } finally {
    await db.drop();
  }
}
