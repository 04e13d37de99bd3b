import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KafkaClientName } from 'nestjs-transactional-message';
import type { SharedRelayRun } from '../shared-relay.js';
import { benchDatabase, cpuBetween, cpuLine, cpuSample, createTopic, fmt, median, uniqueTopic, waitUntil, type CpuUse } from '../harness.js';
import { seedCommitted } from './relay-drain.js';

const CHILD = resolve(dirname(fileURLToPath(import.meta.url)), '../shared-relay.js');
const BUCKETS = 256;
const now = () => performance.timeOrigin + performance.now();

/** A relay process (bench/shared-relay.ts): resolves `ready` once booted, `finish()` with what it published. */
function relayProcess(client: KafkaClientName, url: string): { ready: Promise<void>; finish: () => Promise<SharedRelayRun>; child: ChildProcess } {
  const child = spawn(process.execPath, [...process.execArgv, CHILD, client, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let onReady!: () => void;
  let onFail!: (error: Error) => void;
  const ready = new Promise<void>((done, fail) => ((onReady = done), (onFail = fail)));
  const exited = new Promise<SharedRelayRun>((done, fail) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('TM_BENCH_READY')) onReady();
    });
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('TM_BENCH_SHARED '));
      if (code === 0 && line) done(JSON.parse(line.slice('TM_BENCH_SHARED '.length)) as SharedRelayRun);
      else {
        const error = new Error(`bench: shared-relay exited ${code}: ${out.slice(-500)}`);
        onFail(error);
        fail(error);
      }
    });
  });
  exited.catch(() => undefined);
  return {
    ready,
    child,
    finish: () => {
      child.stdin!.end('done\n');
      return exited;
    },
  };
}

/**
 * `relays` relay processes on one database: booted, their shares of the key buckets settled, then
 * `count` committed messages appear at once (one statement); messages/s from that commit to the
 * last acknowledgement of any relay. Checks that together they published each message once.
 */
async function drainShared(client: KafkaClientName, relays: number, count: number): Promise<{ rate: number; cpu: CpuUse | undefined }> {
  const db = await benchDatabase();
  const procs = Array.from({ length: relays }, () => relayProcess(client, (db.options as { url: string }).url));
  try {
    await Promise.all(procs.map((p) => p.ready));
    const share = Math.ceil(BUCKETS / relays);
    await waitUntil('the relays share the key buckets', async () => {
      const rows: Array<{ n: number }> = await db.dataSource.query(
        `SELECT count(*)::int AS n FROM transactional_message_bucket WHERE expires_at > now() GROUP BY owner`,
      );
      return rows.length === relays && rows.every((r) => r.n <= share) && rows.reduce((sum, r) => sum + r.n, 0) === BUCKETS;
    }, 60_000, 50);
    const topic = uniqueTopic('scale-out');
    await createTopic(topic);
    await seedCommitted(db.dataSource, topic, count, 1_000, count);
    const seededAt = now();
    const before = cpuSample('all');
    // A probe of the committed messages' index, not a count: the poll must not load the database it measures.
    await waitUntil('all delivered', async () => {
      const [{ left }] = await db.dataSource.query(`SELECT EXISTS (SELECT 1 FROM transactional_message WHERE status = 'COMMITTED') AS left`);
      return !left;
    }, 600_000, 20);
    const cpu = cpuBetween(before, cpuSample('all'), count);
    const runs = await Promise.all(procs.map((p) => p.finish()));
    const published = runs.reduce((sum, r) => sum + r.published, 0);
    if (published !== count) throw new Error(`bench: ${relays} relay(s) published ${published} messages for ${count}`);
    const lastAt = Math.max(...runs.map((r) => r.lastAt ?? 0));
    return { rate: count / ((lastAt - seededAt) / 1000), cpu };
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill();
    await db.drop();
  }
}

/**
 * Workload 9: scale-out. One relay, then two, each in a process of its own on one database, shares
 * settled before the backlog appears; A-B-B-A rounds, medians. On this machine the relays, the
 * database and the broker share the same cores: the figure says what a second relay adds here, and
 * the busy cores say why.
 */
export async function scaleOut(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = Number(process.env.TM_BENCH_COUNT ?? (quick ? 20_000 : 100_000));
  const rounds = Number(process.env.TM_BENCH_ROUNDS ?? (quick ? 1 : 2));
  const client = (process.env.TM_BENCH_CLIENT ?? '@platformatic/kafka') as KafkaClientName;
  const one: number[] = [];
  const two: number[] = [];
  const cpu: Record<1 | 2, CpuUse[]> = { 1: [], 2: [] };
  const load: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const relays of [1, 2, 2, 1]) {
      load.push(loadavg()[0]!);
      const run = await drainShared(client, relays, count);
      (relays === 1 ? one : two).push(run.rate);
      if (run.cpu) cpu[relays as 1 | 2].push(run.cpu);
    }
  }
  const ratio = median(two) / median(one);
  const cpuOf = (relays: 1 | 2) => {
    const runs = cpu[relays];
    if (runs.length === 0) return '';
    const of = (which: keyof CpuUse['msPer1000']) => median(runs.map((r) => r.msPer1000[which]));
    return `${relays} relay(s): ${fmt(median(runs.map((r) => r.busyCores)), 2)} of ${runs[0]!.cores} cores busy, CPU ms per 1,000 messages ${cpuLine({ msPer1000: { node: of('node'), postgres: of('postgres'), broker: of('broker') } })}`;
  };
  return {
    lines: [
      `Workload 9 — scale-out (${fmt(count)} committed messages appearing at once, 1,000 keys, ${client}, each relay a process of its own, shares settled first; ${rounds} A-B-B-A round(s), medians)`,
      `  1 relay ${fmt(median(one))} msg/s, 2 relays ${fmt(median(two))} msg/s: ${fmt(ratio, 2)}× (target ≥ 1: ${ratio >= 1 ? 'met' : 'MISSED'})`,
      ...(cpu[1].length > 0 ? [`  ${cpuOf(1)}; ${cpuOf(2)}`] : []),
      `  load average (1 min) at the runs' starts: ${fmt(Math.min(...load), 2)}–${fmt(Math.max(...load), 2)}`,
    ],
    ratios: { 'one relay msg/s': median(one), 'two relays msg/s': median(two), 'two/one': ratio },
  };
}
