import 'reflect-metadata';
import { type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  MessageStatus,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, FAST_CHECK, FAST_RELAY } from './support/relay.fixture.js';

const KEYS = 2_000;

/**
 * Claims and reads that name thousands of keys at once: SQLite allows 500 terms in a compound
 * SELECT, so a key list built as one UNION ALL term per key stalled the relay beyond 500 keys.
 */
describe.each(DATABASE_KINDS)(`${KEYS} keys in one claim or one read on %s`, (kind) => {
  const topic = uniqueTopic(`${kind}.many-keys`);
  let db: TestDatabase;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    await createTopics([topic]);
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await db?.drop();
  });

  async function boot(options: Partial<TransactionalMessageModuleOptions> = {}) {
    const publisher = new ControlledPublisher();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          publisher,
          ...options,
          relay: { ...FAST_RELAY, batchSize: KEYS, ...options.relay },
          check: FAST_CHECK,
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return { app, publisher, producer: app.get(TransactionalMessageProducer) };
  }

  /** Commits one message for each of `keys`, twenty transactions at a time. */
  async function write(producer: TransactionalMessageProducer, keys: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < keys.length; i += 20) {
      const sent = await Promise.all(
        keys.slice(i, i + 20).map((key) => producer.sendMessageInTransaction({ topic, key, body: { key } }, () => TransactionStatus.COMMIT)),
      );
      ids.push(...sent.map((s) => s.messageId));
    }
    return ids;
  }

  it(`${KEYS} keys held by DEAD messages ('hold') do not stop the read of the other keys`, async () => {
    db = await createTestDatabase(kind);
    const writer = await boot({ relay: { enabled: false } });
    await write(writer.producer, Array.from({ length: KEYS }, (_, i) => `dead-${i}`));
    const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);
    await db.dataSource.query(`UPDATE ${q(db.tableName)} SET ${q('status')} = '${MessageStatus.DEAD}'`);
    const ids = await write(writer.producer, ['a', 'b', 'c']);
    const { publisher } = await boot();
    await eventually('the three messages of other keys delivered', () => ids.every((id) => publisher.sentIds().includes(id)), 60_000);
    expect(publisher.sentIds().sort()).toEqual([...ids].sort());
    const dead = (await messageRows(db)).filter((r) => r.status === MessageStatus.DEAD);
    expect(dead).toHaveLength(KEYS);
  });
});
