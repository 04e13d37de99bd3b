import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  MessageStatus,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { MessageTableSharedError } from '../src/errors/message-table-shared.error.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, FAST_CHECK, FAST_RELAY } from './support/relay.fixture.js';

/** One message table serves one producer group: refused at boot, and never published across groups. */
describe.each(DATABASE_KINDS)('producer groups sharing a message table on %s', (kind) => {
  const topic = uniqueTopic(`${kind}.groups`);
  let db: TestDatabase;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    await createTopics([topic]);
  });

  beforeEach(async () => {
    db = await createTestDatabase(kind);
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await db?.drop();
  });

  async function boot(producerGroup: string, options: Partial<TransactionalMessageModuleOptions> = {}) {
    const publisher = new ControlledPublisher();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup,
          publisher,
          ...options,
          relay: { ...FAST_RELAY, ...options.relay },
          check: FAST_CHECK,
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return { publisher, producer: app.get(TransactionalMessageProducer) };
  }

  const send = (producer: TransactionalMessageProducer, key: string) =>
    producer.sendMessageInTransaction({ topic, key, body: { key } }, () => TransactionStatus.COMMIT).then((r) => r.messageId);

  it('a relay of another producer group is refused at boot while the table holds live messages of the first, naming the fix; nothing stored changes', async () => {
    const billing = await boot('billing', { relay: { enabled: false } });
    const id = await send(billing.producer, 'b');
    const attempt = boot('shop');
    await expect(attempt).rejects.toThrow(MessageTableSharedError);
    await expect(attempt).rejects.toThrow(/holds live messages of producer group\(s\) "billing".*producerGroup is "shop".*give this service a table of its own \(tableName/);
    expect((await billing.producer.getMessage(id))?.status).toBe(MessageStatus.COMMITTED);
    // Once the first group's messages are finished, the table may change hands (a renamed group).
    const { publisher } = await boot('billing');
    await eventually('billing delivered its message', () => publisher.sentIds().includes(id));
    await eventually('the message marked', async () => (await billing.producer.getMessage(id))?.status === MessageStatus.DELIVERED);
    await expect(boot('shop')).resolves.toBeDefined();
  });

  it("a relay never publishes another group's message met at run time (two services booted together on an empty table): it says so once and delivers its own", async () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      const shop = await boot('shop');
      const billing = await boot('billing', { relay: { enabled: false } });
      const foreign = await send(billing.producer, 'same-key');
      const foreignLater = await send(billing.producer, 'other-key');
      const own = await send(shop.producer, 'shop-key');
      // The relay reads in write order: by the time its own message is out, it has met the others.
      await eventually('shop delivered its own message', () => shop.publisher.sentIds().includes(own));
      await eventually('its own message marked DELIVERED', async () => (await shop.producer.getMessage(own))?.status === MessageStatus.DELIVERED);
      expect(shop.publisher.sentIds()).toEqual([own]);
      for (const id of [foreign, foreignLater]) expect((await billing.producer.getMessage(id))?.status).toBe(MessageStatus.COMMITTED);
      const said = errors.mock.calls.filter(([text]) => String(text).includes('holds messages of producer group(s) "billing"'));
      expect(said).toHaveLength(1);
      expect(String(said[0][0])).toMatch(/does not publish them.*its own tableName/);
    } finally {
      errors.mockRestore();
    }
  });
});
