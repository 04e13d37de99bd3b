import { benchDatabase, createTopic, fmt, uniqueTopic } from '../harness.js';
import { drainWithRelay, seedCommitted } from './relay-drain.js';

/**
 * Workload 6: a deep backlog per key. The same number of committed messages spread over 1,000 keys
 * (workload 2's shape) or piled up in 12 keys (the fault soak's shape: a few busy keys after an
 * outage), drained by one relay, then by two relays competing for the 12 keys. Side by side in one
 * run; the ratios show what a key's depth and a second relay cost the claim and its after-claim check.
 */
export async function deepBacklog(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = Number(process.env.TM_BENCH_COUNT ?? (quick ? 20_000 : 100_000));
  const drain = async (keys: number, relays: number) => {
    const db = await benchDatabase();
    try {
      const topic = uniqueTopic(`deep-${keys}-${relays}`);
      await createTopic(topic);
      await seedCommitted(db.dataSource, topic, count, keys);
      return await drainWithRelay(db.dataSource, topic, count, 500, relays);
    } finally {
      await db.drop();
    }
  };
  const spread = await drain(1_000, 1);
  const deep = await drain(12, 1);
  const deepTwo = await drain(12, 2);
  return {
    lines: [
      `Workload 6 — deep backlog per key (${fmt(count)} committed messages, 6 partitions, batches of 500)`,
      `  1,000 keys, 1 relay: ${fmt(spread)} msg/s`,
      `  12 keys, 1 relay:    ${fmt(deep)} msg/s, ratio to 1,000 keys ${fmt(deep / spread, 2)}`,
      `  12 keys, 2 relays:   ${fmt(deepTwo)} msg/s, ratio to 1 relay ${fmt(deepTwo / deep, 2)}`,
    ],
    ratios: { 'deep/spread': deep / spread, 'two/one': deepTwo / deep },
  };
}
