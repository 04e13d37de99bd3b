import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataSource } from 'typeorm';
import {
  KafkaPublisher,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  transactionalMessageMigrations,
  type MessagePublisher,
  type OutgoingMessage,
  type PublishFailure,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, KAFKA_BROKERS, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ClaimWatch } from './support/relay.fixture.js';
import { TransactionalMessageEngine } from '../src/engine/transactional-message.engine.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The earlier version, packed at commit 441e8f8 (its dist/ and package.json; see test/upgrade/earlier-instance.mjs). */
const TARBALL = resolve(ROOT, 'test/upgrade/row-lease-relay-441e8f8.tgz');
const UNPACKED = resolve(ROOT, '.cache/upgrade/row-lease-relay-441e8f8/node_modules/nestjs-transactional-message');
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
const PRODUCER_GROUP = 'upgrade-shop';
const RELAY = { pollIntervalMs: 50, leaseMs: 2_000, backoffInitialMs: 50, backoffMaxMs: 200, shutdownTimeoutMs: 2_000 };

/** One publish of either relay: which messages and keys, when (this machine's clock), and whether Kafka took it. */
interface Publish {
  relay: 'earlier' | 'current';
  ids: string[];
  keys: (string | null)[];
  start: number;
  end: number;
  ok: boolean;
}

/**
 * The upgrade docs/upgrading.md describes, done beside live traffic: a relay of the earlier
 * design (the packed earlier version, in a process of its own) delivers while keys are written;
 * the new migrations run; a relay of this version starts; the earlier instance is stopped. A
 * retriable failure hits a key on each side. No key may be published by both relays at once, and
 * per key the messages reach the topic in write order.
 */
describe('upgrading from the row-lease relay (PostgreSQL, real Kafka, the earlier version in a process of its own)', () => {
  const topic = uniqueTopic('upgrade');
  let db: TestDatabase;
  let consumer: TestConsumer;
  let earlier: ChildProcess | undefined;
  const publishes: Publish[] = [];
  const earlierOutput: string[] = [];
  let app: INestApplicationContext | undefined;
  let dataSource: DataSource | undefined;

  beforeAll(async () => {
    if (!existsSync(resolve(UNPACKED, 'package.json'))) {
      mkdirSync(UNPACKED, { recursive: true });
      execFileSync('tar', ['xzf', TARBALL, '-C', UNPACKED, '--strip-components=1']);
    }
    db = await createTestDatabase('postgres', { migrate: false });
    await db.dataSource.query(`CREATE TABLE upgrade_counter (msg_key VARCHAR(16) PRIMARY KEY, n INT NOT NULL)`);
    await db.dataSource.query(`INSERT INTO upgrade_counter (msg_key, n) VALUES ${KEYS.map((k) => `('${k}', 0)`).join(', ')}`);
    await createTopics([topic], 3);
    consumer = await new TestConsumer([topic]).start();
  });

  afterAll(async () => {
    await app?.close();
    await dataSource?.destroy();
    if (earlier && earlier.exitCode === null) earlier.kill('SIGKILL');
    await consumer?.stop();
    await db?.drop();
  });

  const url = () => (db.options as { url: string }).url;

  /** Runs the earlier version's instance script; resolves when it printed `until`. */
  function runEarlier(settings: Record<string, unknown>, until: string, on: Record<string, () => void> = {}): { child: ChildProcess; reached: Promise<void> } {
    const child = spawn(process.execPath, [resolve(ROOT, 'test/upgrade/earlier-instance.mjs')], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        TM_UPGRADE_CONFIG: JSON.stringify({
          packageEntry: resolve(UNPACKED, 'dist/index.js'),
          url: url(),
          topic,
          brokers: KAFKA_BROKERS,
          producerGroup: PRODUCER_GROUP,
          relay: RELAY,
          ...settings,
        }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const reached = new Promise<void>((done, fail) => {
      let buffer = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
          const line = buffer.slice(0, i);
          buffer = buffer.slice(i + 1);
          earlierOutput.push(line);
          if (!line.startsWith('{')) continue;
          const event = JSON.parse(line) as { event: string } & Publish;
          // A publish of the earlier relay lasts from its start to its end, or to the process's exit.
          if (event.event === 'publish-start') publishes.push({ ...event, relay: 'earlier', end: Infinity, ok: false });
          if (event.event === 'publish') Object.assign(publishes.find((p) => p.relay === 'earlier' && (p as Publish & { no?: number }).no === (event as Publish & { no?: number }).no)!, { end: event.end, ok: event.ok });
          on[event.event]?.();
          if (event.event === until) done();
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => earlierOutput.push(chunk.toString()));
      child.once('exit', (code) => {
        for (const p of publishes) if (p.relay === 'earlier' && p.end === Infinity) p.end = Date.now();
      });
      child.once('exit', (code) => fail(new Error(`the earlier instance exited (${code}) before '${until}':\n${earlierOutput.slice(-30).join('\n')}`)));
    });
    return { child, reached };
  }

  it('a rolling deploy as docs/upgrading.md says: no key in two relays at once, every key in write order, nothing lost, the failures retried in order', async () => {
    // The table as the earlier version made it (its four migrations), and the earlier version running.
    const migrate = runEarlier({ mode: 'migrate' }, 'migrated');
    await migrate.reached;
    // Its relay fails k1 twice (retriable), and publishes one batch of k2 slowly: the upgrade
    // happens while that batch is leased and in flight.
    let slowBegan = false;
    const started = runEarlier(
      { mode: 'run', writeKeys: KEYS, writeIntervalMs: 5, failKey: 'k1', failTimes: 2, slowKey: 'k2', slowAfter: 20, slowMs: 60_000 },
      'ready',
      { 'slow-publish': () => (slowBegan = true) },
    );
    earlier = started.child;
    await started.reached;
    await eventually('the earlier relay beginning its slow publish of k2 (after 20 publishes)', () => slowBegan, 60_000);
    // What it published before reaches the topic. (Not a count of records: the slow publish holds
    // its relay up, and on a loaded machine 20 publishes may carry fewer records than a count asks.)
    const earlierPublished = publishes.filter((p) => p.relay === 'earlier' && p.ok).flatMap((p) => p.ids);
    expect(earlierPublished.length).toBeGreaterThan(0);
    await consumer.waitFor('what the earlier relay published before its slow publish', (r) => {
      const read = new Set(r.map((x) => x.headers['tm-message-id']));
      return earlierPublished.every((id) => read.has(id));
    }, 60_000);

    // Step 2: this version's migrations, while the earlier version writes and delivers.
    const migrator = await new DataSource({ ...db.options, migrations: transactionalMessageMigrations() } as never).initialize();
    const ran = (await migrator.runMigrations()).map((m) => m.name);
    await migrator.destroy();
    expect(ran).toEqual(['RetireTransactionalMessageRowLeases1765000000000', 'AddTransactionalMessageDelayedMessages1765100000000']);

    // Step 3: this version, whose relay fails k3 twice (retriable); it writes the same keys too.
    dataSource = await new DataSource({ ...db.options, migrations: [] } as never).initialize();
    const publisher = new Recording(publishes);
    const moduleRef = await Test.createTestingModule({
      imports: [TransactionalMessageModule.forRoot({ dataSource, producerGroup: PRODUCER_GROUP, publisher, relay: RELAY })],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
    const producer = app.get(TransactionalMessageProducer);
    // The new relay runs a few rounds while the earlier relay's slow batch is still leased and in
    // flight; then that publish ends.
    const watch = new ClaimWatch(app.get(TransactionalMessageEngine).ownership);
    await eventually('the new relay looked for work a few times', () => watch.started >= 5, 60_000);
    earlier.kill('SIGUSR2');
    let writing = true;
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        const key = KEYS[i % KEYS.length];
        await dataSource!.transaction(async (manager) => {
          const [{ n }] = await manager.query(`WITH u AS (UPDATE upgrade_counter SET n = n + 1 WHERE msg_key = $1 RETURNING n) SELECT n FROM u`, [key]);
          const id = await producer.sendHalfMessage({ topic, key, body: { key, n, by: 'current' } }, { manager });
          await producer.commit(id, { manager });
        });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await eventually('the new relay delivering', () => publishes.some((p) => p.relay === 'current' && p.ok), 60_000);
    await eventually('k3 failed twice on the new relay, then went out', () => publisher.failures >= 2 && publishes.some((p) => p.relay === 'current' && p.ok && p.keys.includes('k3')), 60_000);

    // The rolling deploy ends: the earlier instance stops. Writes go on for a moment, then stop.
    const closed = new Promise<void>((r) => earlier!.once('exit', () => r()));
    earlier.kill('SIGTERM');
    await closed;
    await new Promise((r) => setTimeout(r, 300));
    writing = false;
    await writes;

    // Everything written reaches the topic.
    const [{ total }] = await db.dataSource.query(`SELECT SUM(n) AS total FROM upgrade_counter`);
    await consumer.waitFor('every message written', (r) => new Set(r.map((x) => x.headers['tm-message-id'])).size >= Number(total), 90_000);

    // Per key, the first copies are in write order (the counter, taken in the message's transaction).
    for (const key of KEYS) {
      const seen = new Set<string>();
      const order: number[] = [];
      for (const record of consumer.of(topic).filter((r) => r.key === key)) {
        if (seen.has(record.headers['tm-message-id'])) continue;
        seen.add(record.headers['tm-message-id']);
        order.push((record.json as { n: number }).n);
      }
      expect(order).toEqual(Array.from({ length: order.length }, (_, i) => i + 1));
    }
    // No key in both relays' publishes at overlapping times.
    const overlaps: string[] = [];
    const ofRelay = (relay: Publish['relay']) => publishes.filter((p) => p.relay === relay);
    for (const a of ofRelay('earlier')) {
      for (const b of ofRelay('current')) {
        const shared = a.keys.filter((k) => b.keys.includes(k));
        if (shared.length > 0 && a.start <= b.end && b.start <= a.end) overlaps.push(`${shared.join(',')}: earlier ${a.start}-${a.end}, current ${b.start}-${b.end}`);
      }
    }
    expect(overlaps).toEqual([]);
    // Both designs delivered, the earlier one stopped claiming once the fifth migration ran (it says so).
    expect(ofRelay('earlier').some((p) => p.ok)).toBe(true);
    expect(ofRelay('current').some((p) => p.ok)).toBe(true);
    expect(earlierOutput.join('\n')).toMatch(/on relay\.ownership 'rows' holds off/);
    // Nothing was published twice: neither design took over what the other had in hand.
    const ids = consumer.of(topic).map((r) => r.headers['tm-message-id']);
    expect(ids.length - new Set(ids).size).toBe(0);
    // A deadline above the sum of the steps' own (60 s, 90 s), so that a step that hangs fails with its name.
  }, 300_000);
});

/** This version's publisher in the test: the real Kafka publisher, k3 refused twice (retriable), every publish recorded. */
class Recording implements MessagePublisher {
  failures = 0;
  private readonly inner = new KafkaPublisher({ brokers: KAFKA_BROKERS, clientId: 'tm-test-upgrade-current' });

  constructor(private readonly log: Publish[]) {}

  connect(): Promise<void> {
    return this.inner.connect();
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    const start = Date.now();
    const record = { relay: 'current' as const, ids: messages.map((m) => m.id), keys: [...new Set(messages.map((m) => m.key))] };
    try {
      if (this.failures < 2 && messages.some((m) => m.key === 'k3')) {
        this.failures++;
        throw new RetriableRefusal(`refused for now (injected ${this.failures}/2)`);
      }
      await this.inner.publish(messages);
      this.log.push({ ...record, start, end: Date.now(), ok: true });
    } catch (error) {
      this.log.push({ ...record, start, end: Date.now(), ok: false });
      throw error;
    }
  }

  classify(error: unknown): PublishFailure {
    return error instanceof RetriableRefusal ? { kind: 'message', retriable: true } : this.inner.classify(error);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

class RetriableRefusal extends Error {}
