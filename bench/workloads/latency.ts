import { randomBytes } from 'node:crypto';
import { benchApp, BenchOrder, BENCH_TOPIC, OrderWriter } from '../app.js';
import { benchDatabase, createTopic, fmt, percentile, startCounter, waitUntil } from '../harness.js';

/**
 * Workload 3: time from the business transaction's commit (the decorated call resolved) to a
 * kafkajs consumer receiving the message, at a steady rate. Same process, same monotonic clock.
 * One second at the first rate goes first, measured and shown apart ("warm-up"): the first
 * messages to a fresh topic carry one-off costs (the producer's first look at the topic, the
 * consumer's first fetches after it joined, code not yet compiled), which a steady rate does not.
 */
export async function latency(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const seconds = quick ? 5 : 20;
  const lines = [`Workload 3 — end-to-end latency (commit → kafkajs consumer; ${seconds} s per rate; default relay settings, wake-up on commit)`];
  const ratios: Record<string, number> = {};
  const db = await benchDatabase([BenchOrder]);
  await createTopic(BENCH_TOPIC);
  const app = await benchApp(db.dataSource, {});
  const writer = app.get(OrderWriter);
  try {
    for (const [rate, warmUp] of [[500, true], [500, false], [2_000, false]] as const) {
      const run = randomBytes(4).toString('hex');
      const committedAt = new Map<number, number>();
      // By message: a message may arrive before its call's continuation ran (a loaded event loop),
      // so both times are kept and paired at the end.
      const receivedAt = new Map<number, number>();
      const counter = await startCounter(BENCH_TOPIC, (value, at) => {
        const message = JSON.parse(value.toString()) as { i: number; run: string };
        if (message.run === run && !receivedAt.has(message.i)) receivedAt.set(message.i, at);
      });
      const total = rate * (warmUp ? 1 : seconds);
      let launched = 0;
      let inFlight = 0;
      const started = performance.now();
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
          while (launched < due && inFlight < 64) {
            const i = launched++;
            inFlight++;
            void writer.decorated(i, run).then(() => {
              committedAt.set(i, performance.now());
              inFlight--;
            });
          }
          if (launched >= total) {
            clearInterval(tick);
            resolve();
          }
        }, 5);
      });
      await waitUntil('all committed', () => inFlight === 0, 60_000, 1);
      const achieved = total / ((performance.now() - started) / 1000);
      await waitUntil('all received', () => receivedAt.size >= total, 120_000);
      await counter.stop();
      const sorted = [...receivedAt].map(([i, at]) => Math.max(0, at - committedAt.get(i)!)).sort((a, b) => a - b);
      const [p50, p99, max] = [percentile(sorted, 50), percentile(sorted, 99), sorted[sorted.length - 1]];
      if (warmUp) {
        lines.push(`  warm-up, 1 s at ${fmt(rate)}/s (the first messages to the topic): p50 ${fmt(p50, 1)} ms, p99 ${fmt(p99, 1)} ms, max ${fmt(max, 1)} ms`);
        continue;
      }
      ratios[`p50@${rate}`] = p50;
      ratios[`p99@${rate}`] = p99;
      lines.push(
        `  ${fmt(rate)}/s asked (${fmt(achieved)}/s achieved): p50 ${fmt(p50, 1)} ms, p99 ${fmt(p99, 1)} ms, max ${fmt(max, 1)} ms` +
          (rate === 500 ? `  (target p50 ≤ 10 ms: ${p50 <= 10 ? 'met' : 'MISSED'}; p99 ≤ 50 ms: ${p99 <= 50 ? 'met' : 'MISSED'})` : ''),
      );
    }
  } finally {
    await app.close();
    await db.drop();
  }
  return { lines, ratios };
}
