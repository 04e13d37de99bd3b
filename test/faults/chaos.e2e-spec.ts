// Fault injection, part 3: chaos. Producer/relay processes (and the consumer) are killed with
// SIGKILL or paused with SIGSTOP at random while a workload with all four outcomes runs, and the
// Kafka broker is killed and restarted; then the oracle checks the whole history.
//
// The quick variant runs in the normal test command. The soak variant runs on demand:
//   bash scripts/soak.sh
// Both print their figures; TM_FAULT_DB=mariadb runs them on MariaDB, TM_FAULT_SEED=<n> replays a run's random choices.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createFaultDatabase, type FaultDatabaseKind } from './support/fault-db.js';
import { committedCopies, consumerConfig, exactlyOnceConfig, expectNoViolations, FAULT_RELAY, figures, publishOrderViolations, settleAndCheck, workerConfig } from './support/scenario.js';
import { WorkerFleet, type WorkerProcess } from './support/workers.js';
import type { WorkerConfig } from './worker/protocol.js';
import type { Pause } from './support/oracle.js';
import { OwnBroker } from '../support/own-broker.js';
import { createTopics } from '../support/kafka.js';
import { testPort } from '../support/ports.js';

const SOAK = process.env.TM_FAULT_SOAK === '1';
const PLAN = SOAK
  ? { messages: Number(process.env.TM_FAULT_MESSAGES ?? 50_000), minKills: Number(process.env.TM_FAULT_KILLS ?? 50), brokerRestarts: 3, apps: 3, keysPerApp: 4 }
  : { messages: 6_000, minKills: 20, brokerRestarts: 1, apps: 3, keysPerApp: 4 };
const DATABASE = (process.env.TM_FAULT_DB ?? 'postgres') as FaultDatabaseKind;
const SEED = Number(process.env.TM_FAULT_SEED ?? Date.now() % 1_000_000);

// A deadline for a failure message, not a timing assertion.
jest.setTimeout(SOAK ? 3 * 3_600_000 : 600_000);

/** mulberry32: a small seeded PRNG, so that a failing run's choices can be replayed with its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One long-lived role (an app owning some keys, the relay, the consumer): killed and started again. */
interface Slot {
  config: WorkerConfig;
  current: WorkerProcess;
  producer: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// TM_FAULT_BROKER_PORT: another port, to run two soaks (PostgreSQL and MariaDB) side by side.
const chaosBroker = new OwnBroker(testPort('TM_FAULT_BROKER_PORT', 19292));

describe('fault injection: chaos', () => {
  const broker = chaosBroker;

  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  const title = (plan: typeof PLAN) => `${plan.messages} messages, all four outcomes, at least ${plan.minKills} kills and ${plan.brokerRestarts} broker restart(s) on ${DATABASE}`;

  // The soak runs one of the two: TM_FAULT_EXACTLY_ONCE=1 picks the exactly-once one.
  const eosSoak = SOAK && process.env.TM_FAULT_EXACTLY_ONCE === '1';
  if (!eosSoak) it(`7. chaos: ${title(PLAN)}`, () => chaos(PLAN));

  // kafka.exactlyOnce: the same chaos, and no second copy of any message in the topic. The quick
  // variant runs a smaller plan on each client (TM_FAULT_EXACTLY_ONCE=1 makes the soak run with it).
  // At least 3 pauses past the lease: the zombies exactly-once must fence.
  const EOS_PLAN = SOAK ? { ...PLAN, minPauses: 10 } : { ...PLAN, messages: 3_000, minKills: 12, minPauses: 3 };
  const soakClient = process.env.TM_KAFKA_CLIENT ?? '@platformatic/kafka';
  const eosClients = SOAK ? (eosSoak ? [soakClient] : []) : ['@platformatic/kafka', 'kafkajs'];
  for (const client of eosClients as ('kafkajs' | '@platformatic/kafka')[]) {
    it(`7e. chaos with kafka.exactlyOnce on ${client}: ${title(EOS_PLAN)}, no second copy in the topic`, () => chaos(EOS_PLAN, client));
  }
});

/** One chaos run (with `exactlyOnce`: every relay publishes exactly once, on that client). */
async function chaos(
  PLAN: { messages: number; minKills: number; minPauses?: number; brokerRestarts: number; apps: number; keysPerApp: number },
  exactlyOnce?: 'kafkajs' | '@platformatic/kafka',
): Promise<void> {
  const broker = chaosBroker;
  const eos = exactlyOnce ? exactlyOnceConfig('chaos', exactlyOnce) : {};
  const rnd = random(SEED);
  const fleet = new WorkerFleet(`chaos-${DATABASE}${exactlyOnce ? '-eos' : ''}`);
  const db = await createFaultDatabase(DATABASE);
  let passed = false;
  try {
    const topic = `tm-test.faults.chaos.${SEED}.${Date.now()}`;
    await createTopics([topic], 6, broker.brokers);
    const perKey = Math.ceil(PLAN.messages / (PLAN.apps * PLAN.keysPerApp));
    const slots: Slot[] = [];
    // Delivered and rolled-back messages kept (FAULT_RELAY): the oracle reads when each was
    // decided, to tell a check that raced a decision from one that came after it.
    const relayOptions = FAULT_RELAY;
    for (let a = 0; a < PLAN.apps; a++) {
      const keys = Array.from({ length: PLAN.keysPerApp }, (_, k) => `app${a}-key${k}`);
      const config = workerConfig(db, topic, broker.brokers, `app${a}`, { ...eos, relayOptions, produce: { keys, perKey, mix: [55, 15, 15, 15] } });
      slots.push({ config, current: fleet.start(config), producer: true });
    }
    const relayConfig = workerConfig(db, topic, broker.brokers, 'relay', { ...eos, relayOptions });
    slots.push({ config: relayConfig, current: fleet.start(relayConfig), producer: false });
    const consumerConcurrency = Number(process.env.TM_FAULT_CONSUMER_CONCURRENCY ?? 1);
    const consumer = fleet.supervise({ ...consumerConfig(db, topic, broker.brokers), consumerConcurrency });

    let kills = 0;
    let gaveUp = 0;
    let pauses = 0;
    let consumerKills = 0;
    let brokerRestarts = 0;
    const restartAt = Array.from({ length: PLAN.brokerRestarts }, (_, i) => Math.floor(((i + 1) * PLAN.minKills) / (PLAN.brokerRestarts + 1)));
    const pending: Promise<void>[] = [];
    const frozen: Pause[] = [];
    const producing = () => slots.some((s) => s.producer && !s.current.has('produced'));
    const started = Date.now();

    while (producing() || kills < PLAN.minKills || pauses < (PLAN.minPauses ?? 0) || brokerRestarts < PLAN.brokerRestarts) {
      await sleep(300 + rnd() * 900);
      if (brokerRestarts < PLAN.brokerRestarts && kills >= restartAt[brokerRestarts]) {
        await broker.kill();
        await sleep(1_000 + rnd() * 2_000);
        await broker.start();
        brokerRestarts++;
        continue;
      }
      const roll = rnd();
      if (roll < 0.1) {
        // The consumer: its inbox must keep effects once while Kafka redelivers.
        consumer.current().signal('SIGKILL');
        consumerKills++;
        continue;
      }
      const slot = slots[Math.floor(rnd() * slots.length)];
      const victim = slot.current;
      if (!victim.alive && !victim.isStopped()) {
        // It ended on its own. A crash (an unhandled rejection or uncaught exception: the library
        // ended its host) fails the run at once; the worker script giving up (its database did
        // not come back in time) is restarted, as a process manager would. Not counted as a kill.
        if (victim.crash) throw new Error(`${victim.config.name} (pid ${victim.pid}) crashed: ${victim.crash}\n${victim.tail(30)}`);
        gaveUp++;
        slot.current = fleet.start(slot.config);
        continue;
      }
      if (!victim.alive || victim.isStopped()) continue;
      if (roll < 0.3) {
        // Paused past its lease, then resumed (a long GC pause, a frozen VM).
        pauses++;
        const pause: Pause = { pid: victim.pid, from: Date.now(), to: Number.MAX_SAFE_INTEGER };
        frozen.push(pause);
        victim.signal('SIGSTOP');
        const pauseMs = FAULT_RELAY.leaseMs * (1.2 + rnd());
        pending.push(
          sleep(pauseMs).then(() => {
            victim.signal('SIGCONT');
            pause.to = Date.now();
          }),
        );
        continue;
      }
      await victim.kill();
      kills++;
      await sleep(rnd() * 800);
      slot.current = fleet.start(slot.config);
    }
    await Promise.all(pending);
    const chaosSeconds = Math.round((Date.now() - started) / 1000);
    // What was left when the chaos ended, to read the settle time by (checks to run, messages to
    // publish, effects to apply).
    const left = new Map<string, number>(
      (await db.dataSource.query(`SELECT status, COUNT(*) AS n FROM ${db.tableName} WHERE status IN ('HALF', 'COMMITTED') GROUP BY status`)).map(
        (r: { status: string; n: number | string }) => [r.status, Number(r.n)],
      ),
    );
    const [{ n: effectsAtChaosEnd }] = await db.dataSource.query(`SELECT COUNT(*) AS n FROM fault_effect`);

    const report = await settleAndCheck(db, fleet, SOAK ? 1_800_000 : 300_000, { pauses: frozen, leaseMs: FAULT_RELAY.leaseMs });
    const published = await publishOrderViolations(db, topic, broker.brokers, exactlyOnce ? report.toDeliver : undefined);
    const topicCopies = exactlyOnce ? await committedCopies(topic, broker.brokers, 6) : undefined;
    const extra = {
      db: DATABASE,
      seed: SEED,
      kills,
      gaveUp,
      crashes: fleet.crashed().length,
      pauses,
      consumerKills,
      consumerRestarts: consumer.restarts,
      brokerRestarts,
      chaosSeconds,
      halfAtChaosEnd: left.get('HALF') ?? 0,
      committedAtChaosEnd: left.get('COMMITTED') ?? 0,
      effectsAtChaosEnd: Number(effectsAtChaosEnd),
      settleSeconds: Math.round((Date.now() - started) / 1000) - chaosSeconds,
      recordsInTopic: published.records,
      ...(topicCopies ? { committedRecords: topicCopies.records, committedDuplicates: topicCopies.duplicates } : {}),
      publishOrderViolations: published.violations.length,
    };
    console.log(figures(`${SOAK ? 'chaos soak' : 'chaos quick'}${exactlyOnce ? ` exactly-once ${exactlyOnce}` : ''}`, report, extra));
    expect(published.violations).toEqual([]);
    expectNoViolations(report);
    // The topic's committed records, each transaction decided by its marker: every message once.
    if (exactlyOnce) expect(topicCopies).toEqual({ records: report.toDeliver, duplicates: 0 });
    expect(report.written).toBe(perKey * PLAN.apps * PLAN.keysPerApp);
    expect(report.written).toBeGreaterThanOrEqual(PLAN.messages);
    expect(kills).toBeGreaterThanOrEqual(PLAN.minKills);
    expect(pauses).toBeGreaterThanOrEqual(PLAN.minPauses ?? 0);
    expect(report.consumedMessages).toBe(report.toDeliver);
    expect(report.checkedToDeliver).toBeGreaterThan(0);
    passed = true;
  } finally {
    await fleet.stopAll();
    // TM_FAULT_KEEP=1 keeps a failed run's database for a post-mortem.
    if (passed || process.env.TM_FAULT_KEEP !== '1') await db.drop();
    else console.log(`[faults] kept the database of the failed run: ${db.url}`);
  }
}
