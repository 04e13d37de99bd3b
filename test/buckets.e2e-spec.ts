import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import {
  TransactionContext,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { MessageTableMissingError } from '../src/errors/message-table-missing.error.js';
import { keyBucket } from '../src/store/key-bucket.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type DatabaseKind, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ClaimWatch, ControlledPublisher, FAST_CHECK, FAST_RELAY, gate, InjectedFailure } from './support/relay.fixture.js';
import { TransactionalMessageEngine } from '../src/engine/transactional-message.engine.js';

/** Keys that hash into the same key bucket as `key`. */
function keysInBucketOf(key: string, count: number): string[] {
  const bucket = keyBucket(key, '');
  const found: string[] = [];
  for (let i = 0; found.length < count; i++) if (keyBucket(`other-${i}`, '') === bucket) found.push(`other-${i}`);
  return found;
}

/** `relay.ownership: 'buckets'`: relays lease key buckets and read their committed messages in seq order. */
describe.each(DATABASE_KINDS)('key buckets on %s', (kind: DatabaseKind) => {
  const several = kind !== 'sqlite'; // SQLite has one connection: one relay
  const topic = {
    late: uniqueTopic(`${kind}.bucket-late`),
    fail: uniqueTopic(`${kind}.bucket-fail`),
    stuck: uniqueTopic(`${kind}.bucket-stuck`),
    slow: uniqueTopic(`${kind}.bucket-slow`),
    upgrade: uniqueTopic(`${kind}.bucket-upgrade`),
    mixed: uniqueTopic(`${kind}.bucket-mixed`),
  };
  let db: TestDatabase;
  let consumer: TestConsumer;
  const apps: INestApplicationContext[] = [];
  const dataSources: DataSource[] = [];
  const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await createTopics(Object.values(topic));
    consumer = await new TestConsumer(Object.values(topic)).start();
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const dataSource of dataSources.splice(0)) await dataSource.destroy();
  });

  afterAll(async () => {
    await consumer?.stop();
    await db?.drop();
  });

  /** A new application instance (its own DataSource, except on SQLite) with a bucket-owning relay. */
  async function instance(options: Partial<TransactionalMessageModuleOptions> = {}) {
    let dataSource = db.dataSource;
    if (several) {
      dataSource = await new DataSource(db.options).initialize();
      dataSources.push(dataSource);
    }
    const publisher = (options.publisher as ControlledPublisher | undefined) ?? new ControlledPublisher();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource,
          producerGroup: 'shop',
          ...options,
          publisher,
          relay: { ...FAST_RELAY, ...options.relay },
          check: { ...FAST_CHECK, ...options.check },
        }),
      ],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return { app, publisher, producer: app.get(TransactionalMessageProducer), context: app.get(TransactionContext) };
  }

  async function send(producer: TransactionalMessageProducer, topicName: string, key: string | null, body: unknown): Promise<string> {
    return (await producer.sendMessageInTransaction({ topic: topicName, key: key ?? undefined, body }, () => TransactionStatus.COMMIT)).messageId;
  }

  const now = kind === 'postgres' ? 'statement_timestamp()' : kind === 'mariadb' ? 'UTC_TIMESTAMP(3)' : `strftime('%Y-%m-%d %H:%M:%f', 'now')`;

  /** Buckets held per relay, from the lease table. */
  async function shares(): Promise<number[]> {
    const rows: Array<{ n: number | string }> = await db.dataSource.query(
      `SELECT COUNT(*) AS n FROM ${q(`${db.tableName}_bucket`)} WHERE ${q('owner')} IS NOT NULL AND ${q('expires_at')} > ${now} ` +
        `GROUP BY ${q('owner')}`,
    );
    return rows.map((r) => Number(r.n)).sort((a, b) => a - b);
  }

  /** Relays whose announcement has not run out (not the fifth migration's marker, which never runs out). */
  async function announced(): Promise<number> {
    const rows: Array<{ n: number | string }> = await db.dataSource.query(
      `SELECT COUNT(*) AS n FROM ${q(`${db.tableName}_relay`)} WHERE ${q('expires_at')} > ${now} AND ${q('owner')} <> 'retired:row-lease-relays'`,
    );
    return Number(rows[0].n);
  }

  /**
   * `count` messages of two keys (`<prefix>-0`, `<prefix>-1`) on `topicName`, then relay A, which
   * reads them and hangs in connect() (a broker that does not answer) until `stuck` opens.
   */
  async function relayStuckOnMessages(topicName: string, prefix: string, count: number) {
    const writer = await instance({ relay: { enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(await send(writer.producer, topicName, `${prefix}-${i % 2}`, i));
    const stuck = gate();
    const publisherA = new ControlledPublisher();
    publisherA.connectGate = stuck.wait;
    await instance({ publisher: publisherA, relay: { leaseMs: 400 } });
    await eventually('A is stuck connecting', () => publisherA.connectCalls === 1);
    return { ids, stuck, publisherA };
  }

  const keyedIds = (topicName: string, key: string) =>
    consumer
      .of(topicName)
      .filter((r) => r.key === key)
      .map((r) => r.headers['tm-message-id']);

  it('writes each message with its key bucket, the same for every message of a key', async () => {
    const { producer } = await instance({ relay: { enabled: false } });
    const ids = [await send(producer, topic.late, 'k-1', 1), await send(producer, topic.late, 'k-1', 2), await send(producer, topic.late, null, 3)];
    const rows = (await messageRows(db)).filter((r) => ids.includes(r.id));
    expect(rows.map((r) => Number(r.bucket))).toEqual([keyBucket('k-1', ''), keyBucket('k-1', ''), keyBucket(null, ids[2])]);
    await db.dataSource.query(`DELETE FROM ${q(db.tableName)}`);
  });

  // SQLite has one writer at a time: while a transaction is open no later message can commit.
  (several ? it : it.skip)('delivers a message whose transaction commits after later messages of its bucket were delivered (no cursor passes it)', async () => {
    const writer = await instance({ relay: { enabled: false } });
    const relay = await instance();
    const [laterKey] = keysInBucketOf('late-key', 1);
    // The business transaction stores A (the lowest seq of the bucket) and stays open...
    const open = gate();
    let stored!: () => void;
    const a = new Promise<string>((resolve, reject) => {
      writer.context
        .runInTransaction(async () => {
          const { messageId } = await writer.producer.sendMessageInTransaction({ topic: topic.late, key: 'late-key', body: 'A' }, () => TransactionStatus.COMMIT);
          stored();
          await open.wait;
          return messageId;
        })
        .then(resolve, reject);
    });
    await new Promise<void>((resolve) => (stored = resolve));
    // ...while later messages of the same bucket commit and go out.
    const later = [await send(writer.producer, topic.late, laterKey, 'B'), await send(writer.producer, topic.late, laterKey, 'C')];
    await consumer.waitFor('B and C', () => later.every((id) => keyedIds(topic.late, laterKey).includes(id)));
    const seqOf = async (id: string) => Number((await messageRows(db)).find((r) => r.id === id)?.seq ?? Infinity);
    open.open();
    const aId = await a;
    expect(await seqOf(aId)).toBeLessThan(await seqOf(later[0]));
    await consumer.waitFor('A', () => keyedIds(topic.late, 'late-key').includes(aId));
    // A consumer can read a record before the producer has the broker's acknowledgement of it.
    await eventually('the relay has the acknowledgement of A', () => relay.publisher.sentIds().includes(aId));
    expect(relay.publisher.sentIds()).toEqual([...later, aId]);
  });

  it("a failure holds back its key's later messages across pipelined batches; other keys go on; nothing lost or reordered", async () => {
    const { producer, publisher } = await instance({ relay: { batchSize: 4 } });
    await producer.sendMessageInTransaction({ topic: topic.fail, key: 'warm-up', body: 0 }, () => TransactionStatus.COMMIT);
    await consumer.waitFor('warm-up', () => keyedIds(topic.fail, 'warm-up').length === 1);
    let failed = 0;
    const written = new Map<string, string[]>([
      ['k-a', []],
      ['k-b', []],
      ['k-c', []],
    ]);
    publisher.inject = (messages) => {
      // The third message of k-a fails twice: its later messages (some already read into the next
      // batch) must wait behind it.
      const third = written.get('k-a')![2];
      if (failed < 2 && messages.some((m) => m.id === third)) {
        failed++;
        return new InjectedFailure('injected', { kind: 'message', retriable: true });
      }
      return undefined;
    };
    for (let i = 0; i < 12; i++) {
      for (const key of written.keys()) written.get(key)!.push(await send(producer, topic.fail, key, i));
    }
    await consumer.waitFor('36 messages', () => [...written.keys()].every((key) => keyedIds(topic.fail, key).length >= 12));
    expect(failed).toBe(2);
    for (const [key, ids] of written) expect(keyedIds(topic.fail, key)).toEqual(ids);
  });

  it('a claim that ends in an unexpected error gives its messages back: the later messages of their keys do not pass them', async () => {
    // A publisher whose classify() throws once: the relay cycle fails outside publishing, as a
    // database error while renewing or recording a failure would make it.
    class ClassifyThrowsOnce extends ControlledPublisher {
      thrown = false;
      override classify(error: unknown) {
        if (!this.thrown) {
          this.thrown = true;
          throw new Error('classify broke');
        }
        return super.classify(error);
      }
    }
    const publisher = new ClassifyThrowsOnce();
    const key = 'unexpected-key';
    let failFirst = true;
    publisher.inject = (messages) => {
      if (failFirst && messages.some((m) => m.key === key)) {
        failFirst = false;
        return new InjectedFailure('injected', { kind: 'message', retriable: true });
      }
      return undefined;
    };
    const { producer } = await instance({ publisher, relay: { batchSize: 2 } });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await send(producer, topic.fail, key, i));
    await consumer.waitFor('the six', () => keyedIds(topic.fail, key).length >= 6);
    expect(publisher.thrown).toBe(true);
    expect(keyedIds(topic.fail, key)).toEqual(ids);
  });

  (several ? it : it.skip)('relays share the buckets as they come and go: one holds all, two half each, three a third; one that stops gives its own back', async () => {
    const one = await instance();
    await eventually('one relay holds every bucket', async () => (await shares()).join() === '256');
    const two = await instance();
    await eventually('two relays hold 128 each', async () => (await shares()).join() === '128,128');
    const three = await instance();
    await eventually('three relays share them', async () => (await shares()).join() === '84,86,86');
    await three.app.close();
    apps.splice(apps.indexOf(three.app), 1);
    await eventually('two relays again', async () => (await shares()).join() === '128,128');
    void one;
    void two;
  });

  (several ? it : it.skip)('a relay stuck past its bucket lease neither publishes nor marks what another relay took over', async () => {
    // Relay A reads the batch, then hangs in connect() past its lease.
    const { ids, stuck, publisherA } = await relayStuckOnMessages(topic.stuck, 'stuck', 5);
    // B waits out A's leases, takes the buckets over and delivers.
    const b = await instance({ relay: { leaseMs: 400 } });
    await consumer.waitFor('the messages, from B', () => ids.every((id) => consumer.of(topic.stuck).some((r) => r.headers['tm-message-id'] === id)));
    await eventually('B marked them', async () => (await messageRows(db)).filter((r) => ids.includes(r.id)).every((r) => r.status === 'DELIVERED'));
    const deliveredAt = (await messageRows(db)).filter((r) => ids.includes(r.id)).map((r) => [r.id, String(r.delivered_at), r.delivery_attempts]);
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      stuck.open();
      await eventually('A found its buckets taken over', () => warn.mock.calls.some(([text]) => /Lost \d+ key bucket\(s\)/.test(String(text))));
      await eventually('A left the batch', () => warn.mock.calls.some(([text]) => /Lease lost on \d+ message\(s\)/.test(String(text))));
    } finally {
      warn.mockRestore();
    }
    expect(publisherA.publishCalls).toBe(0);
    expect((await messageRows(db)).filter((r) => ids.includes(r.id)).map((r) => [r.id, String(r.delivered_at), r.delivery_attempts])).toEqual(deliveredAt);
    expect(b.publisher.sentIds().filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
  });

  (several ? it : it.skip)('a publish that lasts longer than the lease keeps the buckets: no other relay publishes the batch meanwhile', async () => {
    const writer = await instance({ relay: { enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await send(writer.producer, topic.slow, `slow-${i}`, i));
    const slow = gate();
    const publisherA = new ControlledPublisher();
    publisherA.publishGate = slow.wait;
    await instance({ publisher: publisherA, relay: { leaseMs: 500 } });
    await eventually('relay A is publishing', () => publisherA.publishCalls === 1);
    const b = await instance({ relay: { leaseMs: 500 } });
    // B joins the group and reads at least twenty times (two leases of 50 ms polls) while A's publish is held.
    const watchB = new ClaimWatch(b.app.get(TransactionalMessageEngine).ownership);
    await eventually('both relays announced', async () => (await announced()) === 2);
    await eventually('relay B claimed twenty times', () => watchB.started >= 20);
    expect(publisherA.publishSettled).toBe(0);
    slow.open();
    await consumer.waitFor('the three messages', () => ids.every((id) => consumer.of(topic.slow).some((r) => r.headers['tm-message-id'] === id)));
    await eventually('marked delivered', async () => (await messageRows(db)).filter((r) => ids.includes(r.id)).every((r) => r.status === 'DELIVERED'));
    expect(b.publisher.sentIds().filter((id) => ids.includes(id))).toEqual([]);
    expect(publisherA.sentIds().filter((id) => ids.includes(id))).toEqual(ids);
  });

  /** Clears the bucket of the given messages, as instances of an earlier version wrote them. */
  const unbucket = (ids: string[]) =>
    db.dataSource.query(`UPDATE ${q(db.tableName)} SET ${q('bucket')} = NULL WHERE ${q('id')} IN (${ids.map((id) => `'${id}'`).join(', ')})`);

  it('messages written without a bucket (by an earlier version) go out in key order with the bucketed ones, and the relays give the live ones their bucket', async () => {
    const writer = await instance({ relay: { enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await send(writer.producer, topic.upgrade, 'mixed-key', i));
    const half = await writer.producer.sendHalfMessage({ topic: topic.upgrade, key: 'half-key', body: 'h' }, { checkImmunityMs: 3_600_000 } as never);
    await unbucket([ids[0], ids[2], ids[4], half]);
    const relays = [await instance({ relay: { batchSize: 2 } }), ...(several ? [await instance({ relay: { batchSize: 2 } })] : [])];
    await consumer.waitFor('the six', () => keyedIds(topic.upgrade, 'mixed-key').length >= 6);
    expect(keyedIds(topic.upgrade, 'mixed-key')).toEqual(ids);
    expect(relays.flatMap((r) => r.publisher.sentIds()).filter((id) => ids.includes(id))).toHaveLength(6);
    // A live message (here HALF) written without a bucket is given its bucket by a relay's maintenance.
    await eventually('the half message has its bucket', async () => (await messageRows(db)).find((r) => r.id === half)?.bucket !== null);
    expect(Number((await messageRows(db)).find((r) => r.id === half)!.bucket)).toBe(keyBucket('half-key', ''));
  });

  it("messages without a bucket of a key whose bucket another relay holds do not fill this relay's reads: its own keys go out", async () => {
    const writer = await instance({ relay: { enabled: false } });
    // Another relay holds the bucket of 'elsewhere' (and will for the whole test).
    const elsewhere = keyBucket('elsewhere', '');
    await db.dataSource.query(
      `UPDATE ${q(`${db.tableName}_bucket`)} SET ${q('owner')} = 'another relay', ${q('token')} = 'another token', ` +
        `${q('expires_at')} = '2999-01-01 00:00:00.000' WHERE ${q('bucket')} = ${elsewhere}`,
    );
    const foreign: string[] = [];
    for (let i = 0; i < 6; i++) foreign.push(await send(writer.producer, topic.upgrade, 'elsewhere', i));
    await unbucket(foreign);
    // Behind them, a key of a bucket this relay can take.
    let own = 'mine-0';
    for (let n = 1; keyBucket(own, '') === elsewhere; n++) own = `mine-${n}`;
    const mine = await send(writer.producer, topic.upgrade, own, 'mine');
    // Reads of two messages: without the buckets filled, every read would hold only 'elsewhere' rows.
    try {
      const { publisher } = await instance({ relay: { batchSize: 2 } });
      await consumer.waitFor('its own key', () => keyedIds(topic.upgrade, own).includes(mine));
      expect(publisher.sentIds().filter((id) => foreign.includes(id))).toEqual([]);
      expect(Number((await messageRows(db)).find((r) => r.id === foreign[0])!.bucket)).toBe(elsewhere);
    } finally {
      // The other relay goes: its messages are this file's later tests' no more.
      await db.dataSource.query(`DELETE FROM ${q(db.tableName)} WHERE ${q('id')} IN (${foreign.map((id) => `'${id}'`).join(', ')})`);
      await db.dataSource.query(
        `UPDATE ${q(`${db.tableName}_bucket`)} SET ${q('owner')} = NULL, ${q('token')} = NULL, ${q('expires_at')} = NULL WHERE ${q('bucket')} = ${elsewhere}`,
      );
    }
  });

  it('reads nothing while a relay of the row-lease design (an earlier version) holds committed messages under a lease; says why once; delivers them in order once the leases end', async () => {
    const writer = await instance({ relay: { enabled: false } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await send(writer.producer, topic.mixed, 'leased-key', i));
    // A relay of the earlier design claimed them and has not finished (its lease, written here as it writes it).
    const lease = (owner: string, until: string) =>
      db.dataSource.query(
        `UPDATE ${q(db.tableName)} SET ${q('lease_owner')} = ${owner}, ${q('lease_token')} = ${owner}, ${q('lease_expires_at')} = ${until} ` +
          `WHERE ${q('id')} IN (${ids.map((id) => `'${id}'`).join(', ')})`,
      );
    await lease("'relay on rows'", "'2999-01-01 00:00:00.000'");
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      const relay = await instance({ relay: { leaseMs: 300 } });
      await eventually('the relay says it waits', () =>
        warn.mock.calls.some(([text]) => /waits: relays of the row-lease design .* hold 3 committed message\(s\) under a lease/.test(String(text))),
      );
      // Claims that came after the warning found nothing (and the maintenances went on).
      const watch = new ClaimWatch(relay.app.get(TransactionalMessageEngine).ownership);
      await watch.idle();
      expect(relay.publisher.publishCalls).toBe(0);
      expect(warn.mock.calls.filter(([text]) => /waits: relays of the row-lease design/.test(String(text)))).toHaveLength(1);
      // The earlier relay gives them back: this one delivers them, in order.
      await lease('NULL', 'NULL');
      await consumer.waitFor('the three', () => keyedIds(topic.mixed, 'leased-key').length >= 3);
      expect(keyedIds(topic.mixed, 'leased-key')).toEqual(ids);
    } finally {
      warn.mockRestore();
    }
  });

  // Not on SQLite: there a statement that never answers holds the one connection, and the
  // database (shared by this file's tests) with it.
  (several ? it : it.skip)('shutdown waits for a key-bucket maintenance stuck on the database at most shutdownTimeoutMs, then gives the buckets back', async () => {
    const { app } = await instance();
    await eventually('the relay announced', async () => (await announced()) === 1);
    // The next maintenance's first statement never answers (a lock, a connection that died silently).
    const store = (app.get(TransactionalMessageEngine).ownership as unknown as { store: { heartbeat: (...args: unknown[]) => Promise<unknown> } }).store;
    let stuck = false;
    store.heartbeat = () => {
      stuck = true;
      return new Promise(() => undefined);
    };
    await eventually('a maintenance stuck', () => stuck);
    apps.splice(apps.indexOf(app), 1);
    await app.close(); // returns (after shutdownTimeoutMs); without a bound it never did
    expect(await announced()).toBe(0);
    expect(await shares()).toEqual([]);
  });

  it("with retentionMs 0 (the default) the relay's mark deletes a delivered message, not the pruner", async () => {
    const { producer } = await instance({ relay: { retentionMs: 0, pruneIntervalMs: 3_600_000 } });
    const plain = await send(producer, topic.late, 'deleted', 1);
    const half = await producer.sendHalfMessage({ topic: topic.late, key: 'deleted', body: 2 });
    await producer.commit(half);
    await consumer.waitFor('both', () => [plain, half].every((id) => keyedIds(topic.late, 'deleted').includes(id)));
    await eventually('both deleted', async () => (await messageRows(db)).every((r) => r.id !== plain && r.id !== half));
    expect(await producer.getMessage(plain)).toBeNull();
    expect(keyedIds(topic.late, 'deleted')).toEqual([plain, half]);
  });

  it('drain() publishes through the buckets too', async () => {
    const { producer, app } = await instance({ relay: { autoStart: false } });
    const id = await send(producer, topic.late, 'drained', 'x');
    expect(await app.get(TransactionalMessageRelay).drain()).toBe(1);
    await consumer.waitFor('drained', () => keyedIds(topic.late, 'drained').includes(id));
  });
});

describe.each([
  ['AddTransactionalMessageDelayedMessages', 1],
  ['RetireTransactionalMessageRowLeases', 2],
  ['AddTransactionalMessageKeyBuckets', 3],
])('a message table without the migration %s', (migration, undo) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    for (let i = 0; i < undo; i++) await db.dataSource.undoLastMigration();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('refuses the boot, naming the migration', async () => {
    const moduleRef = Test.createTestingModule({
      imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'shop', publisher: new ControlledPublisher() })],
    });
    const compiled = await moduleRef.compile();
    compiled.useLogger(false);
    const error = await compiled.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MessageTableMissingError);
    expect(String((error as Error).message)).toContain(migration);
    await compiled.close().catch(() => undefined);
  });
});
