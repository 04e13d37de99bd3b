import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// One topic of its own for the decorated writer, set before the bench app's module is loaded.
process.env.TM_BENCH_TOPIC ??= `tm-bench.orders.${randomBytes(4).toString('hex')}`;

const args = process.argv.slice(2);
const full = args.includes('--full');
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const write = args.includes('--write');
/** Also print each workload's ratios as one line `TM_BENCH_RATIOS <id> <json>` (bench/compare-versions.ts reads them). */
const json = args.includes('--json');

const { benchDatabase, deleteCreatedTopics, machine } = await import('./harness.js');
const workloads: Array<[string, (quick: boolean) => Promise<{ lines: string[]; ratios?: Record<string, number> }>]> = [
  ['1', (await import('./workloads/transaction-overhead.js')).transactionOverhead],
  ['2', (await import('./workloads/relay-throughput.js')).relayThroughput],
  ['3', (await import('./workloads/latency.js')).latency],
  ['4', (await import('./workloads/history.js')).history],
  ['5', (await import('./workloads/checks.js')).checkThroughput],
  ['6', (await import('./workloads/deep-backlog.js')).deepBacklog],
  ['7', (await import('./workloads/relay-only.js')).relayOnly],
  ['8', (await import('./workloads/peer.js')).peer],
  ['9', (await import('./workloads/scale-out.js')).scaleOut],
];

const probe = await benchDatabase();
const host = await machine(probe.dataSource);
await probe.drop();
const header = [`nestjs-transactional-message bench — ${full ? 'full' : 'quick'} run, ${new Date().toISOString()}`, `Machine: ${host}`];
console.log(header.join('\n'));
const output: string[] = [];
for (const [id, workload] of workloads) {
  if (only && !only.includes(id)) continue;
  const started = performance.now();
  const { lines, ratios } = await workload(!full);
  await deleteCreatedTopics();
  if (json) console.log(`TM_BENCH_RATIOS ${id} ${JSON.stringify(ratios ?? {})}`);
  lines.push(`  (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  console.log(`\n${lines.join('\n')}`);
  output.push(lines.join('\n'));
}
if (write) {
  const file = resolve(dirname(fileURLToPath(import.meta.url)), '../last-run.txt');
  writeFileSync(file, `${header.join('\n')}\n\n${output.join('\n\n')}\n`);
  console.log(`\nwritten to ${file}`);
}
process.exit(0);
