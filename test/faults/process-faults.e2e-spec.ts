// Fault injection, part 1: processes that die or stop at the worst moments (DESIGN.md section 3).
// Every test runs real worker processes (test/faults/worker) on PostgreSQL and the shared Kafka
// broker, injects its fault with SIGKILL or SIGSTOP/SIGCONT, and ends with the oracle.
import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createFaultDatabase } from './support/fault-db.js';
import { runOracle } from './support/oracle.js';
import { committedCopies, consumerConfig, exactlyOnceConfig, expectNoViolations, FAULT_RELAY, recordsInTopic, settleAndCheck, workerConfig } from './support/scenario.js';
import { WorkerFleet } from './support/workers.js';
import { createTopics, eventually, KAFKA_BROKERS, uniqueTopic } from '../support/kafka.js';
import type { TestDatabase } from '../support/databases.js';

type FaultDb = TestDatabase & { url: string };

// Deadlines for a failure message (workers start, leases expire), not timing assertions.
jest.setTimeout(180_000);

let fleet: WorkerFleet;
let db: FaultDb | undefined;

afterEach(async () => {
  await fleet?.stopAll();
  await db?.drop();
  db = undefined;
});

async function setup(name: string, partitions = 3): Promise<{ db: FaultDb; topic: string }> {
  fleet = new WorkerFleet(name);
  db = await createFaultDatabase('postgres');
  const topic = uniqueTopic(`faults.${name}`);
  await createTopics([topic], partitions);
  return { db, topic };
}

const rowsOf = async (d: FaultDb, ids: string[]) =>
  (await d.dataSource.query(`SELECT id, status, delivered_at, delivery_attempts, lease_token FROM ${d.tableName}`)).filter((r: any) => ids.includes(r.id));

describe('fault injection: processes', () => {
  beforeAll(() => {
    // The workers run the built package (scripts/test.sh compiles them); say so if they are missing.
    return import('node:fs').then(({ existsSync }) => {
      if (!existsSync(new URL('./dist/worker.js', import.meta.url))) {
        throw new Error('test/faults/dist/worker.js is missing: run the tests with `bash scripts/test.sh` (it builds the package and the worker)');
      }
    });
  });

  it('0. the harness fails a test whose worker process crashed (an unhandled rejection), and tells it from an injected kill', async () => {
    const { db, topic } = await setup('harness-crash');
    const killed = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'killed', { relay: false }));
    const crashing = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'crashing', { relay: false, fault: { kind: 'unhandled-rejection', afterMs: 100 } }));
    await killed.waitFor('ready');
    await killed.kill();
    expect(killed.crash).toBeUndefined();
    const crash = await crashing.waitFor('crash');
    expect(crash).toMatchObject({ event: 'crash', kind: 'unhandledRejection' });
    await crashing.exited;
    expect(crashing.crash).toMatch(/^unhandledRejection: Error: a rejection nobody handles \(injected\)/);
    await expect(fleet.stopAll()).rejects.toThrow(/1 worker process\(es\) crashed:\n--- crashing/);
    fleet = new WorkerFleet('harness-crash-done'); // what afterEach stops: nothing is left running
  });

  it('1. a producer killed between the database commit and the publish: after a restart everything committed is delivered once', async () => {
    const { db, topic } = await setup('producer-killed');
    const consumer = fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    const keys = ['k0', 'k1', 'k2', 'k3'];
    const config = workerConfig(db, topic, KAFKA_BROKERS, 'producer', { produce: { keys, perKey: 60 } });
    const first = fleet.start({ ...config, fault: { kind: 'kill-before-publish', at: 3 } });
    const status = await first.exited;
    expect(status.signal).toBe('SIGKILL');
    const fault = first.events.find((e) => e.event === 'fault');
    if (fault?.event !== 'fault') throw new Error(`the producer died without reaching its fault:\n${first.tail()}`);
    // The messages it had read are committed, not delivered (its key buckets stay leased until their lease runs out).
    const claimed = await rowsOf(db, fault.ids);
    expect(claimed.length).toBe(fault.ids.length);
    expect(claimed.every((r: any) => r.status === 'COMMITTED')).toBe(true);

    fleet.start(config); // restarted: resumes writing where the dead one stopped, its relay takes the claim over after the lease
    const report = await settleAndCheck(db, fleet, 90_000);
    await consumer.stop();
    expectNoViolations(report);
    expect(report.written).toBe(keys.length * 60);
    expect(report.toDeliver).toBeGreaterThan(0);
    expect(report.consumedMessages).toBe(report.toDeliver);
    // The orders the killed process had in flight never committed, or committed and were delivered.
    expect((await rowsOf(db, fault.ids)).every((r: any) => r.status === 'DELIVERED')).toBe(true);
    const attempts = await db.dataSource.query(`SELECT message_id FROM fault_publish WHERE pid = $1`, [first.pid]);
    expect(attempts.filter((a: any) => fault.ids.includes(a.message_id))).toEqual([]);
  });

  it('2. a relay killed after the Kafka acknowledgement and before the mark: published again, the inbox drops the duplicate', async () => {
    const { db, topic } = await setup('relay-killed-after-ack');
    const consumer = fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    const writer = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'writer', { relay: false, produce: { keys: ['a', 'b', 'c'], perKey: 20 } }));
    await writer.waitFor('produced');
    const relay = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-a', { fault: { kind: 'kill-after-publish', at: 1 } }));
    expect((await relay.exited).signal).toBe('SIGKILL');
    const fault = relay.events.find((e) => e.event === 'fault');
    if (fault?.event !== 'fault') throw new Error(`the relay died without reaching its fault:\n${relay.tail()}`);
    expect(fault.ids.length).toBe(60);
    // Kafka has them; the table does not know: they are committed, in key buckets a dead relay leased.
    expect((await rowsOf(db, fault.ids)).every((r: any) => r.status === 'COMMITTED')).toBe(true);

    fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-b'));
    const report = await settleAndCheck(db, fleet, 60_000);
    // Both copies are in the topic (more only if a send was retried after a lost acknowledgement).
    await eventually('both copies in the topic', async () => (await recordsInTopic(topic, KAFKA_BROKERS)) >= 120, 30_000);
    await eventually('the consumer received the republished copies', async () => (await runOracle(db)).duplicatedDeliveries >= 60, 30_000);
    await consumer.stop();
    const final = await settleAndCheck(db, fleet, 10_000);
    expectNoViolations(final);
    expect(report.toDeliver).toBe(60);
    expect(final.consumedMessages).toBe(60);
    expect(final.deliveries).toBeGreaterThanOrEqual(120);
    expect(final.duplicatedEffects).toBe(0);
    expect((await rowsOf(db, fault.ids)).every((r: any) => r.status === 'DELIVERED')).toBe(true);
  });

  it('3. a process killed after storing a half message and before its local transaction ends: the check resolves it', async () => {
    const { db, topic } = await setup('explicit-killed');
    const consumer = fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    // One dies before its local transaction (no order: the check must roll back), one after it committed and before commit() (paid: the check must commit).
    const beforeLocal = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'explicit-a', { role: 'explicit', relay: false, explicitCount: 5, fault: { kind: 'kill-after-half', at: 3 } }));
    const afterLocal = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'explicit-b', { role: 'explicit', relay: false, explicitCount: 5, fault: { kind: 'kill-after-local', at: 2 } }));
    const [a, b] = await Promise.all([beforeLocal.exited, afterLocal.exited]);
    expect([a.signal, b.signal]).toEqual(['SIGKILL', 'SIGKILL']);
    const idOf = (w: typeof beforeLocal) => {
      const e = w.events.find((x) => x.event === 'fault');
      if (e?.event !== 'fault') throw new Error(`no fault reached:\n${w.tail()}`);
      return e.ids[0];
    };
    const [orphan, paid] = [idOf(beforeLocal), idOf(afterLocal)];
    expect((await rowsOf(db, [orphan, paid])).map((r: any) => r.status)).toEqual(['HALF', 'HALF']);

    // The application comes back (relay and check handler, no new writes).
    fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'app'));
    const report = await settleAndCheck(db, fleet, 60_000);
    await consumer.stop();
    expectNoViolations(report);
    const status = async (id: string) => (await rowsOf(db, [id]))[0].status;
    expect(await status(orphan)).toBe('ROLLED_BACK');
    expect(await status(paid)).toBe('DELIVERED');
    // 2 committed by explicit-a before it died, 1 by explicit-b, plus the checked one.
    expect(report.consumedMessages).toBe(4);
    // Each message was answered only its right way. A handler that answered after check.handlerTimeoutMs
    // (a loaded machine) counted as UNKNOWN and the message was checked again: the same answer twice.
    const calls = await db.dataSource.query(`SELECT DISTINCT message_id, answer FROM fault_check_call WHERE answer IN ('COMMIT', 'ROLLBACK')`);
    expect(calls.map((c: any) => [c.message_id, c.answer]).sort()).toEqual(
      [
        [orphan, 'ROLLBACK'],
        [paid, 'COMMIT'],
      ].sort(),
    );
  });

  it('4. a relay paused past its lease while another takes over: once resumed it publishes and marks nothing', async () => {
    const { db, topic } = await setup('relay-paused');
    const consumer = fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    const writer = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'writer', { relay: false, produce: { keys: ['a', 'b', 'c'], perKey: 10 } }));
    await writer.waitFor('produced');
    const relayOptions = { ...FAULT_RELAY, leaseMs: 1_500 };
    const paused = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-a', { relayOptions, fault: { kind: 'stop-in-connect', at: 1 } }));
    await paused.waitFor('fault');
    await eventually('relay A is stopped (SIGSTOP)', () => paused.isStopped(), 10_000);
    // It read all thirty (the fault fires in its connect, after the read of its first batch).
    const ids = (await db.dataSource.query(`SELECT id FROM ${db.tableName}`)).map((r: any) => r.id);
    expect(ids.length).toBe(30);

    fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-b', { relayOptions }));
    await settleAndCheck(db, fleet, 60_000);
    const before = await rowsOf(db, ids);

    paused.signal('SIGCONT');
    await eventually('relay A found its lease lost', () => paused.tail(200).includes('Lease lost on 30 message(s)'), 20_000);
    const fromA = await db.dataSource.query(`SELECT COUNT(*) AS n FROM fault_publish WHERE pid = $1`, [paused.pid]);
    expect(Number(fromA[0].n)).toBe(0);
    expect(await rowsOf(db, ids)).toEqual(before);
    await consumer.stop();
    const report = await settleAndCheck(db, fleet, 10_000);
    expectNoViolations(report);
    expect(report.consumedMessages).toBe(30);
    expect(report.duplicatedDeliveries).toBe(0);
  });

  it('9. SIGTERM while checks are in flight, at their last check: nothing is counted without an answer, nothing runs after close, the next process decides them', async () => {
    const { db, topic } = await setup('sigterm-checks');
    const consumer = fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    // Every order is paid, its outcome UNKNOWN; maxChecks 1: a check counted without the handler's
    // answer would roll a paid order's message back (lost).
    const checkOptions = { intervalMs: 100, maxChecks: 1, concurrency: 1, batchSize: 50, handlerTimeoutMs: 5_000 };
    const config = workerConfig(db, topic, KAFKA_BROKERS, 'checker', {
      checkMode: 'slow',
      checkOptions,
      checkImmunityMs: 1_500,
      produce: { keys: ['a', 'b', 'c'], perKey: 6, mix: [0, 0, 100, 0] },
      exitByItself: true,
    });
    const first = fleet.start(config);
    await first.waitFor('produced');
    await eventually('the first check under way', async () => (await db.dataSource.query(`SELECT 1 FROM fault_check_call`)).length > 0, 30_000);
    first.signal('SIGTERM');
    await first.waitFor('closed', 30_000);
    // Nothing of the library keeps the process alive once the application is closed.
    const status = await Promise.race([first.exited, new Promise<'alive'>((resolve) => setTimeout(resolve, 15_000, 'alive'))]);
    if (status === 'alive') await first.kill();
    expect(status).toEqual({ code: 0, signal: null });
    expect(first.tail(400).split('\n').filter((line) => / (ERROR|WARN) /.test(line))).toEqual([]);
    // Every recorded check had its handler called; the rest of the batch was given back unchecked.
    const counted = await db.dataSource.query(`SELECT message_id, check_number FROM ${db.tableName}_check`);
    const calls = await db.dataSource.query(`SELECT message_id, check_count FROM fault_check_call`);
    for (const check of counted) expect(calls.some((c: any) => c.message_id === check.message_id && c.check_count === check.check_number)).toBe(true);
    expect(await db.dataSource.query(`SELECT id FROM ${db.tableName} WHERE status = 'ROLLED_BACK'`)).toEqual([]);

    fleet.start({ ...config, checkMode: 'lookup', name: 'checker-2' });
    const report = await settleAndCheck(db, fleet, 60_000);
    await consumer.stop();
    expectNoViolations(report);
    expect(report.consumedMessages).toBe(18);
  });

  describe('8. a check handler that never gives an answer: the message is rolled back or parked as configured, never published', () => {
    const cases = [
      { mode: 'throw', onExhausted: 'rollback', final: 'ROLLED_BACK', history: 'UNKNOWN' },
      { mode: 'hang', onExhausted: 'park', final: 'CHECK_EXHAUSTED', history: 'UNKNOWN' },
      { mode: 'unknown', onExhausted: 'rollback', final: 'ROLLED_BACK', history: 'UNKNOWN' },
      { mode: 'none', onExhausted: 'park', final: 'CHECK_EXHAUSTED', history: undefined },
      { mode: 'none', onExhausted: 'rollback', final: 'ROLLED_BACK', history: undefined },
    ] as const;
    it.each(cases)('handler $mode, onExhausted $onExhausted → $final', async ({ mode, onExhausted, final, history }) => {
      const { db, topic } = await setup(`check-${mode}-${onExhausted}`);
      const maxChecks = 3;
      // The orders are paid (a working handler would answer COMMIT), but this handler never says so.
      const app = fleet.start(
        workerConfig(db, topic, KAFKA_BROKERS, 'app', {
          checkMode: mode,
          checkOptions: { intervalMs: 150, handlerTimeoutMs: 300, maxChecks, maxAgeMs: 4_000, onExhausted },
          checkImmunityMs: 200,
          produce: { keys: ['a', 'b'], perKey: 5, mix: [0, 0, 100, 0] },
        }),
      );
      await app.waitFor('produced');
      await eventually(`every message ${final}`, async () => {
        const rows = await db.dataSource.query(`SELECT status FROM ${db.tableName}`);
        return rows.length === 10 && rows.every((r: any) => r.status === final);
      }, 60_000);
      await app.stop();
      expect(await recordsInTopic(topic, KAFKA_BROKERS)).toBe(0);
      expect(await db.dataSource.query(`SELECT * FROM fault_publish`)).toEqual([]);
      const attempts = await db.dataSource.query(`SELECT message_id, check_number, result FROM ${db.tableName}_check ORDER BY message_id, check_number`);
      const calls = await db.dataSource.query(`SELECT message_id, check_count, status_at_call FROM fault_check_call`);
      if (history === undefined) {
        expect(attempts).toEqual([]); // no handler: nothing was checked; check.maxAgeMs ended them
        expect(calls).toEqual([]);
      } else if (mode === 'hang') {
        // Calls that never return hold their slot for good: check.concurrency (default 4) calls in
        // all, none twice for a message, each counted UNKNOWN once; check.maxAgeMs ended the rest.
        expect(calls).toHaveLength(4);
        expect(new Set(calls.map((c: any) => c.message_id)).size).toBe(4);
        expect(attempts.filter((a: any) => a.result === history).length).toBeGreaterThanOrEqual(4);
        expect(attempts.every((a: any) => a.result === history)).toBe(true);
      } else {
        expect(attempts.length).toBe(10 * maxChecks);
        expect(attempts.every((a: any) => a.result === history)).toBe(true);
        expect(new Set(attempts.map((a: any) => `${a.message_id}#${a.check_number}`)).size).toBe(attempts.length);
        expect(calls.every((c: any) => c.status_at_call === 'HALF')).toBe(true);
        expect(calls.length).toBe(10 * maxChecks);
      }
    });
  });
});

// kafka.exactlyOnce (docs/exactly-once.md): the two faults above that publish a copy again at least
// once (a relay killed after Kafka's acknowledgement and before its mark; a relay frozen past its
// lease) leave no second copy in the topic, on both clients: the topic's committed records, decided
// by each transaction's marker (committedCopies; not a consumer client's read_committed filter,
// which both JavaScript clients get wrong in some cases: docs/exactly-once.md), are each message
// once. Each run ends with one more order per key written after everything settled.
describe.each(['@platformatic/kafka', 'kafkajs'] as const)('fault injection: processes, kafka.exactlyOnce on %s', (client) => {
  const keys = ['a', 'b', 'c'];

  /** One more order per key, after everything settled; then settles again and returns the oracle's report. */
  async function lastOrderPerKeyAndCheck(d: FaultDb, topic: string, perKey: number) {
    await fleet.start(workerConfig(d, topic, KAFKA_BROKERS, 'writer-last', { relay: false, produce: { keys, perKey: perKey + 1 } })).waitFor('produced');
    return settleAndCheck(d, fleet, 60_000);
  }

  it('2e. a relay killed after the Kafka commit and before the mark: the next relay finds the batch in the marks record, marks it and publishes no second copy', async () => {
    const { db, topic } = await setup(`eos-relay-killed-${client === 'kafkajs' ? 'kjs' : 'plt'}`);
    const eos = exactlyOnceConfig('killed', client);
    const consumer = fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    const writer = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'writer', { relay: false, produce: { keys, perKey: 20 } }));
    await writer.waitFor('produced');
    const relay = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-a', { ...eos, fault: { kind: 'kill-after-publish', at: 1 } }));
    expect((await relay.exited).signal).toBe('SIGKILL');
    const fault = relay.events.find((e) => e.event === 'fault');
    if (fault?.event !== 'fault') throw new Error(`the relay died without reaching its fault:\n${relay.tail()}`);
    expect(fault.ids.length).toBe(60);
    // Kafka committed them; the table does not know.
    expect((await rowsOf(db, fault.ids)).every((r: any) => r.status === 'COMMITTED')).toBe(true);

    const next = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-b', eos));
    await settleAndCheck(db, fleet, 60_000);
    expect((await rowsOf(db, fault.ids)).every((r: any) => r.status === 'DELIVERED')).toBe(true);
    const report = await lastOrderPerKeyAndCheck(db, topic, 20);
    await consumer.stop();
    expectNoViolations(report);
    expect(report.consumedMessages).toBe(63);
    expect(await committedCopies(topic, KAFKA_BROKERS, 3)).toEqual({ records: 63, duplicates: 0 });
    expect(next.tail(200)).toMatch(/Slot \d+: marked \d+ message\(s\) delivered that Kafka had committed before the database knew/);
  });

  it('4e. a relay frozen after its lease check and before its send, past its lease, while another takes its slots over: its transaction is refused (fenced), no second copy', async () => {
    const { db, topic } = await setup(`eos-relay-frozen-${client === 'kafkajs' ? 'kjs' : 'plt'}`);
    const eos = exactlyOnceConfig('frozen', client);
    const consumer = fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    const writer = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'writer', { relay: false, produce: { keys, perKey: 10 } }));
    await writer.waitFor('produced');
    // Batches of 10: its first publish recovers its slots (their producers hold the current epoch), the second one freezes.
    const relayOptions = { ...FAULT_RELAY, leaseMs: 1_500, batchSize: 10 };
    const paused = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-a', { ...eos, relayOptions, fault: { kind: 'stop-before-publish', at: 2 } }));
    const fault = await paused.waitFor('fault');
    await eventually('relay A is stopped (SIGSTOP)', () => paused.isStopped(), 10_000);
    if (fault.event !== 'fault') throw new Error('no fault event');
    expect(fault.ids.length).toBe(10);

    fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay-b', { ...eos, relayOptions }));
    await settleAndCheck(db, fleet, 60_000);

    paused.signal('SIGCONT');
    // Resumed, it sends the batch it held with its producer of before the takeover: refused.
    const attempted = async () => Number((await db.dataSource.query(`SELECT COUNT(*) AS n FROM fault_publish WHERE pid = $1 AND phase = 'attempt' AND message_id = $2`, [paused.pid, fault.ids[0]]))[0].n);
    await eventually('relay A sent the batch it held', async () => (await attempted()) > 0, 20_000);
    await eventually('relay A found its send refused', () => /Downstream unavailable/.test(paused.tail(200)), 20_000);
    const acked = await db.dataSource.query(`SELECT message_id FROM fault_publish WHERE pid = $1 AND phase = 'acked' AND message_id = ANY($2)`, [paused.pid, fault.ids]);
    expect(acked).toEqual([]);
    const report = await lastOrderPerKeyAndCheck(db, topic, 10);
    await consumer.stop();
    expectNoViolations(report);
    expect(report.consumedMessages).toBe(33);
    expect(await committedCopies(topic, KAFKA_BROKERS, 3)).toEqual({ records: 33, duplicates: 0 });
  });
});
