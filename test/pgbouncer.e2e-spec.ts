import 'reflect-metadata';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { jest } from '@jest/globals';
import { DataSource } from 'typeorm';
import {
  MessageStatus,
  PreparedStatementUnavailableError,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, KAFKA_BROKERS, KAFKA_CLIENT, uniqueTopic } from './support/kafka.js';
import { OwnPgBouncer } from './support/pgbouncer.js';
import { testPort } from './support/ports.js';
import { FAST_RELAY } from './support/relay.fixture.js';
import { TransactionalMessageEngine } from '../src/engine/transactional-message.engine.js';

const WRITERS = 8;
const PER_WRITER = 10;

/**
 * The library behind a real PgBouncer 1.24.1 in transaction mode (three server connections for
 * eight writers, so transactions move between them), with its prepared-statement support off
 * (`max_prepared_statements = 0`, as every PgBouncer before 1.21) and on.
 */
describe.each([
  { support: 'off', maxPreparedStatements: 0, offset: 0 },
  { support: 'on', maxPreparedStatements: 200, offset: 1 },
])('behind PgBouncer in transaction mode, prepared-statement support $support', ({ support, maxPreparedStatements, offset }) => {
  const bouncer = new OwnPgBouncer(testPort('TM_TEST_PGBOUNCER_PORT', 16432) + offset, maxPreparedStatements);
  const topic = uniqueTopic(`pgbouncer.${support}`);
  let db: TestDatabase;
  let pooled: DataSource;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    await bouncer.start();
    db = await createTestDatabase('postgres');
    const database = new URL((db.options as { url: string }).url).pathname.slice(1);
    pooled = await new DataSource({ type: 'postgres', url: bouncer.url(database), extra: { max: WRITERS } }).initialize();
    await createTopics([topic], 1);
  }, 600_000);

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    await pooled?.destroy();
    await db?.drop();
    await bouncer.stop();
  });

  async function boot(options: Partial<TransactionalMessageModuleOptions> = {}): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: pooled,
          producerGroup: `bouncer-${support}`,
          kafka: { ...KAFKA_CLIENT, brokers: KAFKA_BROKERS, clientId: 'tm-test-pgbouncer' },
          // Through PgBouncer in transaction mode LISTEN cannot work (the relay polls); drain() publishes here.
          relay: { ...FAST_RELAY, autoStart: false, listenNotify: false },
          ...options,
        }),
      ],
    }).compile();
    moduleRef.useLogger(['error', 'warn', 'log', 'debug']);
    const app = await moduleRef.init();
    apps.push(app);
    return app;
  }

  /** WRITERS writers at once, PER_WRITER committed messages each, every one in a business transaction of its own. */
  async function write(app: INestApplicationContext): Promise<string[]> {
    const producer = app.get(TransactionalMessageProducer);
    const ids = await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const mine: string[] = [];
        for (let i = 0; i < PER_WRITER; i++) {
          mine.push(
            await pooled.transaction(async (manager) => {
              const id = await producer.sendHalfMessage({ topic, key: `w${w}`, body: { w, i } }, { manager });
              await producer.commit(id, { manager });
              return id;
            }),
          );
        }
        return mine;
      }),
    );
    return ids.flat();
  }

  it("by default ('auto') checks at boot what the pooler keeps, and every write and delivery works", async () => {
    const log = jest.spyOn(Logger.prototype, 'log');
    const debug = jest.spyOn(Logger.prototype, 'debug');
    try {
      const app = await boot();
      expect(app.get(TransactionalMessageEngine).store.preparedStatements).toBe(support === 'on');
      const said = [...log.mock.calls, ...debug.mock.calls].map(([text]) => String(text));
      if (support === 'off') expect(said.some((t) => t.includes('runs as a plain query') && t.includes('max_prepared_statements'))).toBe(true);
      // The check saw a transaction move to another server connection with the statement kept.
      else expect(said.some((t) => t.includes('runs as a prepared statement') && t.includes('also on another server connection'))).toBe(true);

      const ids = await write(app);
      expect(new Set(ids).size).toBe(WRITERS * PER_WRITER);
      expect(await app.get(TransactionalMessageRelay).drain()).toBe(ids.length);
      const producer = app.get(TransactionalMessageProducer);
      const stored = await Promise.all(ids.map((id) => producer.getMessage(id)));
      expect(stored.filter((m) => m?.status !== MessageStatus.DELIVERED)).toEqual([]);
    } finally {
      log.mockRestore();
      debug.mockRestore();
    }
  });

  if (support === 'off') {
    it('with preparedStatements: true, the boot fails with the fix instead of every write failing later', async () => {
      const attempt = boot({ preparedStatements: true });
      await expect(attempt).rejects.toThrow(PreparedStatementUnavailableError);
      await expect(boot({ preparedStatements: true })).rejects.toThrow(/max_prepared_statements > 0.*'auto'/);
    });
  } else {
    it('with preparedStatements: true, prepares, and every write works', async () => {
      const app = await boot({ preparedStatements: true });
      expect(app.get(TransactionalMessageEngine).store.preparedStatements).toBe(true);
      const ids = await write(app);
      expect(await app.get(TransactionalMessageRelay).drain()).toBe(ids.length);
    });
  }

  it('with preparedStatements: false, sends plain queries, and every write works', async () => {
    const app = await boot({ preparedStatements: false });
    expect(app.get(TransactionalMessageEngine).store.preparedStatements).toBe(false);
    const ids = await write(app);
    expect(await app.get(TransactionalMessageRelay).drain()).toBe(ids.length);
    const outcome = await app.get(TransactionalMessageProducer).sendMessageInTransaction({ topic, key: 'last', body: {} }, () => TransactionStatus.COMMIT);
    expect(outcome.messageId).toBeDefined();
  });
});
