import { KAFKA_CLIENTS } from 'nestjs-transactional-message';
import { benchDatabase, createTopic, fmt, uniqueTopic } from '../harness.js';
import { drainRaw, drainRawPlatformatic, drainWithRelay, seedCommitted } from './relay-drain.js';

/**
 * Workload 2: committed messages drained by the relay, against the same Kafka client sending the
 * same records from memory; once per client the publisher can run on, side by side.
 */
export async function relayThroughput(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = Number(process.env.TM_BENCH_COUNT ?? (quick ? 20_000 : 100_000));
  const lines = [`Workload 2 — relay throughput (${fmt(count)} committed messages, ~200-byte JSON, 1,000 keys, 6 partitions, batches of 500, acks all)`];
  const ratios: Record<string, number> = {};
  for (const client of KAFKA_CLIENTS) {
    const db = await benchDatabase();
    try {
      const topic = uniqueTopic('throughput');
      await createTopic(topic);
      await seedCommitted(db.dataSource, topic, count);
      const relay = await drainWithRelay(db.dataSource, topic, count, 500, 1, undefined, client);
      const raw = client === 'kafkajs' ? await drainRaw(count) : await drainRawPlatformatic(count);
      const ratio = relay / raw;
      ratios[`relay/raw ${client}`] = ratio;
      ratios[`relay ${client}`] = relay;
      lines.push(`  ${client}: relay ${fmt(relay)} msg/s, raw ${client} ${fmt(raw)} msg/s, ratio ${fmt(ratio, 2)}  (target ≥ 0.70: ${ratio >= 0.7 ? 'met' : 'MISSED'})`);
    } finally {
      await db.drop();
    }
  }
  if (ratios['relay kafkajs'] && ratios['relay @platformatic/kafka']) {
    lines.push(`  relay on @platformatic/kafka ÷ relay on kafkajs: ${fmt(ratios['relay @platformatic/kafka'] / ratios['relay kafkajs'], 2)}`);
  }
  return { lines, ratios };
}
