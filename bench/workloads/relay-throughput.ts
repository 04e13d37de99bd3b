import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KAFKA_CLIENTS, type KafkaClientName } from 'nestjs-transactional-message';
import type { DrainRun } from '../fresh-drain.js';
import { benchDatabase, cpuLine, createTopic, fmt, median, uniqueTopic, type CpuUse } from '../harness.js';
import { seedCommitted } from './relay-drain.js';

const CHILD = resolve(dirname(fileURLToPath(import.meta.url)), '../fresh-drain.js');

/** One drain in a fresh process (bench/fresh-drain.ts), with this process's loader flags (bench --versions). */
function freshDrain(args: string[]): Promise<DrainRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [...process.execArgv, CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', fail);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('TM_BENCH_DRAIN '));
      if (code === 0 && line) done(JSON.parse(line.slice('TM_BENCH_DRAIN '.length)) as DrainRun);
      else fail(new Error(`bench: fresh-drain ${args.join(' ')} exited ${code}: ${out.slice(-500)}`));
    });
  });
}

async function relayRun(client: KafkaClientName, count: number): Promise<DrainRun> {
  const db = await benchDatabase();
  try {
    const topic = uniqueTopic('throughput');
    await createTopic(topic);
    await seedCommitted(db.dataSource, topic, count);
    return await freshDrain(['relay', client, (db.options as { url: string }).url, topic, String(count)]);
  } finally {
    await db.drop();
  }
}

async function rawRun(client: KafkaClientName, count: number): Promise<DrainRun> {
  const topic = uniqueTopic('raw');
  await createTopic(topic);
  return freshDrain(['raw', client, topic, String(count)]);
}

/** The median CPU use of `runs`, by process. */
function medianCpu(runs: DrainRun[]): { busyCores: number; msPer1000: CpuUse['msPer1000'] } {
  const of = (which: keyof CpuUse['msPer1000']) => median(runs.map((r) => r.cpu?.msPer1000[which] ?? 0));
  return { busyCores: median(runs.map((r) => r.cpu?.busyCores ?? 0)), msPer1000: { node: of('node'), postgres: of('postgres'), broker: of('broker') } };
}

/**
 * Workload 2: committed messages drained by the relay, against the same Kafka client sending the
 * same records from memory; once per client the publisher can run on. Every drain runs in a fresh
 * process, measured the same way (bench/fresh-drain.ts): with the boot of the library or client,
 * and from the first publish request. Rounds in A-B-B-A order; medians.
 */
export async function relayThroughput(quick: boolean): Promise<{ lines: string[]; ratios: Record<string, number> }> {
  const count = Number(process.env.TM_BENCH_COUNT ?? (quick ? 20_000 : 100_000));
  const rounds = Number(process.env.TM_BENCH_ROUNDS ?? (quick ? 1 : 2));
  const lines = [
    `Workload 2 — relay throughput (${fmt(count)} committed messages, ~200-byte JSON, 1,000 keys, 6 partitions, batches of 500, acks all), ` +
      `each drain in a fresh process, ${rounds} A-B-B-A round(s), medians`,
  ];
  const ratios: Record<string, number> = {};
  const load: number[] = [];
  for (const client of KAFKA_CLIENTS) {
    const relay: DrainRun[] = [];
    const raw: DrainRun[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const which of ['relay', 'raw', 'raw', 'relay'] as const) {
        load.push(loadavg()[0]!);
        if (which === 'relay') relay.push(await relayRun(client, count));
        else raw.push(await rawRun(client, count));
      }
    }
    const m = (runs: DrainRun[], field: Exclude<keyof DrainRun, 'cpu'>) => median(runs.map((r) => r[field] ?? 0));
    const relayCpu = medianCpu(relay);
    const rawCpu = medianCpu(raw);
    const withBoot = m(relay, 'withBoot') / m(raw, 'withBoot');
    const withoutBoot = m(relay, 'withoutBoot') / m(raw, 'withoutBoot');
    Object.assign(ratios, {
      [`relay/raw ${client}`]: withBoot,
      [`relay/raw without boot ${client}`]: withoutBoot,
      [`relay ${client}`]: m(relay, 'withBoot'),
      [`raw ${client}`]: m(raw, 'withBoot'),
      [`relay first publish ms ${client}`]: m(relay, 'firstPublishMs'),
      [`raw first publish ms ${client}`]: m(raw, 'firstPublishMs'),
      [`relay busy cores ${client}`]: relayCpu.busyCores,
      [`raw busy cores ${client}`]: rawCpu.busyCores,
      [`relay Node CPU ms per 1000 ${client}`]: relayCpu.msPer1000.node,
      [`raw Node CPU ms per 1000 ${client}`]: rawCpu.msPer1000.node,
    });
    lines.push(
      `  ${client}: relay ${fmt(m(relay, 'withBoot'))} msg/s (${fmt(m(relay, 'withoutBoot'))} from its first publish, which came ${fmt(m(relay, 'firstPublishMs'))} ms after the start), ` +
        `raw ${fmt(m(raw, 'withBoot'))} msg/s (${fmt(m(raw, 'withoutBoot'))}; first publish at ${fmt(m(raw, 'firstPublishMs'))} ms)`,
      `    relay ÷ raw with boot ${fmt(withBoot, 2)} (target ≥ 0.85: ${withBoot >= 0.85 ? 'met' : 'MISSED'}), without boot ${fmt(withoutBoot, 2)}; ` +
        `the relay spent ${fmt(100 * m(relay, 'publishShare'))} % of its drain inside publish requests`,
      ...(relay[0]?.cpu && raw[0]?.cpu
        ? [
            `    busy cores of the machine's ${relay[0].cpu.cores} from the first acknowledgement to the last: relay ${fmt(relayCpu.busyCores, 2)}, raw ${fmt(rawCpu.busyCores, 2)}; ` +
              `CPU ms per 1,000 messages: relay ${cpuLine(relayCpu)}; raw ${cpuLine(rawCpu)}`,
          ]
        : []),
    );
  }
  if (ratios['relay kafkajs'] && ratios['relay @platformatic/kafka']) {
    lines.push(`  relay on @platformatic/kafka ÷ relay on kafkajs: ${fmt(ratios['relay @platformatic/kafka'] / ratios['relay kafkajs'], 2)}`);
  }
  lines.push(`  load average (1 min) at the runs' starts: ${fmt(Math.min(...load), 2)}–${fmt(Math.max(...load), 2)}`);
  return { lines, ratios };
}
