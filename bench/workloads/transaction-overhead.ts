import { randomBytes } from 'node:crypto';
import { benchApp, BenchOrder, OrderWriter } from '../app.js';
import { benchDatabase, fmt } from '../harness.js';

/** Runs `count` calls of `call` with `concurrency` callers; returns calls per second. */
async function rate(count: number, concurrency: number, call: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await call(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

/**
 * Workload 1: orders/s of a service method that writes an order, with `@TransactionalMessage`
 * against the same write in a plain `dataSource.transaction`, 1 and 16 concurrent callers.
 * Rounds alternate between the two so that drift hits both; the median round is reported.
 */
export async function transactionOverhead(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const db = await benchDatabase([BenchOrder]);
  // The write path alone (no relay competing for the two cores, no NOTIFY)...
  const app = await benchApp(db.dataSource, { relay: { enabled: false, listenNotify: false } });
  const writer = app.get(OrderWriter);
  // ...and a writer-only instance that wakes other processes' relays with NOTIFY (debounced).
  const notifying = await benchApp(db.dataSource, { relay: { enabled: false } });
  const notifyingWriter = notifying.get(OrderWriter);
  const count = quick ? 1_000 : 5_000;
  const rounds = quick ? 4 : 8;
  const lines = [`Workload 1 — transaction overhead (PostgreSQL; ${fmt(count)} orders per round, ${rounds} rounds in ABBA order, median (min–max); relay off)`];
  const ratios: Record<string, number> = {};
  try {
    for (const concurrency of [1, 16]) {
      const plain: number[] = [];
      const decorated: number[] = [];
      const withNotify: number[] = [];
      await rate(200, concurrency, (i) => writer.plain(i, `warm-${randomBytes(3).toString('hex')}`));
      await rate(200, concurrency, (i) => writer.decorated(i, `warm-${randomBytes(3).toString('hex')}`));
      for (let r = 0; r < rounds; r++) {
        const run = randomBytes(4).toString('hex');
        // ABBA: neither variant always runs first (on a warmer cache, a bigger table).
        const order = r % 2 === 0 ? (['plain', 'decorated'] as const) : (['decorated', 'plain'] as const);
        for (const variant of order) {
          if (variant === 'plain') plain.push(await rate(count, concurrency, (i) => writer.plain(i, `p${run}`)));
          else decorated.push(await rate(count, concurrency, (i) => writer.decorated(i, `d${run}`)));
        }
        withNotify.push(await rate(count, concurrency, (i) => notifyingWriter.decorated(i, `n${run}`)));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const spread = (xs: number[]) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
      const ratio = median(decorated) / median(plain);
      ratios[`decorated/plain @${concurrency}`] = ratio;
      lines.push(
        `  ${String(concurrency).padStart(2)} caller(s): plain ${fmt(median(plain))} orders/s (${spread(plain)}), ` +
          `decorated ${fmt(median(decorated))} orders/s (${spread(decorated)}), ratio ${fmt(ratio, 2)}` +
          (concurrency === 16 ? `  (target ≥ 0.75, issue 22: ${ratio >= 0.75 ? 'met' : 'MISSED'})` : '') +
          `\n               writer-only instance with NOTIFY: ${fmt(median(withNotify))} orders/s, ratio ${fmt(median(withNotify) / median(plain), 2)}`,
      );
    }
  } finally {
    await app.close();
    await notifying.close();
    await db.drop();
  }
  return { lines, ratios };
}
