import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * This version against an earlier one, side by side: `node bench/dist/compare-versions.js
 * [--full] [--only=2,3,7] [--rounds=2]` (through `bash scripts/bench.sh --versions …`). Each round
 * runs the workloads once per version, each in a fresh process (`bench/dist/run.js --json`), in
 * ABBA order (earlier, this, this, earlier, …), so that drift of the machine over the run falls on
 * both alike; the figures are the medians of the rounds, and the ratio this ÷ earlier.
 *
 * The earlier version is the package packed at commit 441e8f8 (test/upgrade/, the last version with
 * both relay designs), unpacked under .cache/ beside this repository's node_modules and loaded in
 * place of this one by bench/use-library.mjs; it runs its key-bucket relay (`relay.ownership:
 * 'buckets'`), the design this version keeps.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TARBALL = resolve(ROOT, 'test/upgrade/row-lease-relay-441e8f8.tgz');
const EARLIER = resolve(ROOT, '.cache/bench/row-lease-relay-441e8f8/node_modules/nestjs-transactional-message');

const args = process.argv.slice(2);
const full = args.includes('--full');
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length) ?? '2,3,7';
const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length) ?? 2);

interface Version {
  name: string;
  env: Record<string, string>;
}

const versions: Version[] = [
  { name: 'earlier (441e8f8, buckets)', env: { TM_BENCH_LIBRARY: resolve(EARLIER, 'dist/index.js'), TM_BENCH_RELAY: JSON.stringify({ ownership: 'buckets', retentionMs: 0 }) } },
  { name: 'this', env: {} },
];

if (!existsSync(resolve(EARLIER, 'package.json'))) {
  mkdirSync(EARLIER, { recursive: true });
  execFileSync('tar', ['xzf', TARBALL, '-C', EARLIER, '--strip-components=1']);
}

/** One run of the workloads by one version in a fresh process: its ratios per workload. */
function runOnce(version: Version): Promise<Record<string, Record<string, number>>> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', resolve(ROOT, 'bench/use-library.mjs'), resolve(ROOT, 'bench/dist/run.js'), `--only=${only}`, '--json', ...(full ? ['--full'] : [])], {
      cwd: ROOT,
      env: { ...process.env, ...version.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const results: Record<string, Record<string, number>> = {};
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const match = /^TM_BENCH_RATIOS (\S+) (.*)$/.exec(line);
        if (match) results[match[1]] = JSON.parse(match[2]);
        else if (line.trim()) console.log(`    ${line}`);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise(results) : reject(new Error(`bench: ${version.name} exited with ${code}`))));
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

console.log(`versions compared, ${full ? 'full' : 'quick'} run of workloads ${only}, ${rounds} ABBA round(s), ${new Date().toISOString()}, ${cpus().length} cores`);
const collected = new Map<string, Array<Record<string, Record<string, number>>>>(versions.map((v) => [v.name, []]));
const loads: number[] = [];
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? [...versions, ...[...versions].reverse()] : [...[...versions].reverse(), ...versions];
  for (const version of order) {
    console.log(`  round ${round + 1}: ${version.name} (load average ${loadavg()[0].toFixed(2)})`);
    loads.push(loadavg()[0]);
    collected.get(version.name)!.push(await runOnce(version));
  }
}

const [earlier, current] = versions.map((v) => collected.get(v.name)!);
console.log(`\nmedians of ${earlier.length} runs each (load average during the run ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)})`);
console.log('| workload | measure | earlier | this | this ÷ earlier |');
console.log('| --- | --- | --- | --- | --- |');
for (const workload of only.split(',')) {
  const measures = new Set(current.flatMap((run) => Object.keys(run[workload] ?? {})));
  for (const measure of measures) {
    const a = earlier.map((run) => run[workload]?.[measure]).filter((v): v is number => typeof v === 'number');
    const b = current.map((run) => run[workload]?.[measure]).filter((v): v is number => typeof v === 'number');
    if (a.length === 0 || b.length === 0) continue;
    const [ma, mb] = [median(a), median(b)];
    const digits = Math.abs(mb) < 10 ? 2 : 0;
    console.log(`| ${workload} | ${measure} | ${fmt(ma, digits)} | ${fmt(mb, digits)} | ${fmt(mb / ma, 2)} |`);
  }
}
process.exit(0);
