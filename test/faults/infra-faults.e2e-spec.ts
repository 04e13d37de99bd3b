// Fault injection, part 2: the services fail under the library. The Kafka broker is killed and
// restarted mid-stream (a broker of this test's own, on its own port), and PostgreSQL's
// connections are terminated mid-batch and the server crash-restarted (a server of this test's
// own, on its own port). Real worker processes, a mix of all four outcomes, then the oracle.
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createFaultDatabase } from './support/fault-db.js';
import { OwnPostgres } from './support/own-postgres.js';
import { committedCopies, consumerConfig, exactlyOnceConfig, expectNoViolations, figures, settleAndCheck, workerConfig } from './support/scenario.js';
import { WorkerFleet, type WorkerProcess } from './support/workers.js';
import { OwnBroker } from '../support/own-broker.js';
import { createTopics, eventually, KAFKA_BROKERS, uniqueTopic } from '../support/kafka.js';
import type { TestDatabase } from '../support/databases.js';
import { testPort } from '../support/ports.js';

// Deadlines for a failure message (brokers and servers restart, leases expire), not timing assertions.
jest.setTimeout(300_000);

const ALL_OUTCOMES: [number, number, number, number] = [55, 15, 15, 15];

let fleet: WorkerFleet;
let current: (TestDatabase & { url: string }) | undefined;

afterEach(async () => {
  await fleet?.stopAll();
  await current?.drop();
  current = undefined;
});

const delivered = async (d: TestDatabase) =>
  Number((await d.dataSource.query(`SELECT COUNT(*) AS n FROM ${d.tableName} WHERE status = 'DELIVERED'`))[0].n);

/** Fails if a worker that must stay up has died (the fault must be survived, not crash the application). */
function expectAlive(...workers: WorkerProcess[]): void {
  for (const w of workers) {
    if (!w.alive) throw new Error(`worker ${w.config.name} died (${JSON.stringify(w.exitStatus)}):\n${w.tail()}`);
  }
}

describe('fault injection: the Kafka broker', () => {
  const broker = new OwnBroker(testPort('TM_FAULT_INFRA_BROKER_PORT', 19192));

  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it('5. killed (SIGKILL) and restarted mid-stream, twice: nothing lost, nothing unexpected, order kept', () => brokerKilled());

  // kafka.exactlyOnce: transactions cut by the broker's death are aborted or completed by the
  // coordinator, and the relay recovers the slot before its next send: no second copy.
  it.each(['@platformatic/kafka', 'kafkajs'] as const)('5e. the same with kafka.exactlyOnce on %s: no second copy in the topic', (client) => brokerKilled(client));

  async function brokerKilled(exactlyOnce?: 'kafkajs' | '@platformatic/kafka'): Promise<void> {
    fleet = new WorkerFleet(`broker-killed${exactlyOnce ? '-eos' : ''}`);
    const db = (current = await createFaultDatabase('postgres'));
    const topic = uniqueTopic('faults.broker');
    await createTopics([topic], 3, broker.brokers);
    fleet.supervise(consumerConfig(db, topic, broker.brokers));
    const eos = exactlyOnce ? exactlyOnceConfig('broker', exactlyOnce) : {};
    const producer = fleet.start(
      workerConfig(db, topic, broker.brokers, 'producer', { ...eos, produce: { keys: ['a', 'b', 'c', 'd'], perKey: 250, mix: ALL_OUTCOMES, pauseMs: 15 } }),
    );
    for (let round = 1; round <= 2; round++) {
      const before = await delivered(db);
      await eventually(`deliveries flowing before kill ${round}`, async () => (await delivered(db)) >= before + 50, 120_000);
      await broker.kill();
      await new Promise((r) => setTimeout(r, 1_500)); // the relay meets a dead broker for a while
      expectAlive(producer);
      await broker.start();
    }
    const report = await settleAndCheck(db, fleet, 180_000);
    expectAlive(producer);
    // The topic as the library's own reader decides what is committed (not the consumer client's filter).
    const topicCopies = exactlyOnce ? await committedCopies(topic, broker.brokers, 3) : undefined;
    console.log(figures(`broker killed twice${exactlyOnce ? ` exactly-once ${exactlyOnce}` : ''}`, report, topicCopies ? { committedRecords: topicCopies.records, committedDuplicates: topicCopies.duplicates } : {}));
    expectNoViolations(report);
    if (topicCopies) expect(topicCopies).toEqual({ records: report.toDeliver, duplicates: 0 });
    expect(report.written).toBe(1_000);
    expect(report.consumedMessages).toBe(report.toDeliver);
    expect(report.checkedToDeliver).toBeGreaterThan(0);
  }
});

describe('fault injection: PostgreSQL', () => {
  const server = new OwnPostgres(testPort('TM_FAULT_POSTGRES_PORT', 15433));

  beforeAll(() => server.init());
  afterAll(() => server.destroy());

  it('6. connections terminated mid-batch (pg_terminate_backend), then the server crash-restarted: nothing lost, nothing unexpected', async () => {
    fleet = new WorkerFleet('postgres-faults');
    const db = (current = await createFaultDatabase('postgres', server.url));
    const topic = uniqueTopic('faults.postgres');
    await createTopics([topic], 3, KAFKA_BROKERS);
    fleet.supervise(consumerConfig(db, topic, KAFKA_BROKERS));
    const producer = fleet.start(
      workerConfig(db, topic, KAFKA_BROKERS, 'producer', { produce: { keys: ['a', 'b', 'c', 'd'], perKey: 250, mix: ALL_OUTCOMES, pauseMs: 15 } }),
    );
    const relay = fleet.start(workerConfig(db, topic, KAFKA_BROKERS, 'relay'));
    let terminated = 0;
    for (let round = 1; round <= 4; round++) {
      const before = await delivered(db);
      await eventually(`deliveries flowing before termination ${round}`, async () => (await delivered(db)) >= before + 30, 120_000);
      const rows = await db.dataSource.query(
        `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
      );
      terminated += rows.filter((r: any) => r.done).length;
    }
    expect(terminated).toBeGreaterThan(0);
    const before = await delivered(db);
    await eventually('deliveries flowing before the restart', async () => (await delivered(db)) >= before + 30, 120_000);
    await server.restart(true); // SIGQUIT: every backend dies at once, crash recovery at start
    const report = await settleAndCheck(db, fleet, 180_000);
    expectAlive(producer, relay);
    console.log(figures('postgres faults', report, { terminatedConnections: terminated }));
    expectNoViolations(report);
    expect(report.consumedMessages).toBe(report.toDeliver);
    expect(report.checkedToDeliver).toBeGreaterThan(0);
  });
});
