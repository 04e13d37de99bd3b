import 'reflect-metadata';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import {
  currentHalfMessage,
  InvalidMessageError,
  MessageStatus,
  TransactionalMessage,
  TransactionalMessageAdmin,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionCheckHandler,
  TransactionContext,
  TransactionStatus,
  type StoredMessage,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, TestConsumer, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, FAST_CHECK, FAST_RELAY, InjectedFailure } from './support/relay.fixture.js';
import { ShopOrder } from './support/shop.fixture.js';

/**
 * Delayed messages (RocketMQ's timer messages): DELAYED until due by the database's clock, then
 * COMMITTED in their place in write order; outside their key's order while they wait.
 */
describe.each(DATABASE_KINDS)('delayed messages on %s (real Kafka)', (kind) => {
  const topic = {
    reminder: uniqueTopic(`${kind}.delayed.reminder`),
    order: uniqueTopic(`${kind}.delayed.order`),
    explicit: uniqueTopic(`${kind}.delayed.explicit`),
    restart: uniqueTopic(`${kind}.delayed.restart`),
  };

  let db: TestDatabase;
  let consumer: TestConsumer;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    await createTopics(Object.values(topic));
    consumer = await new TestConsumer(Object.values(topic)).start();
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    await consumer?.stop();
    await db?.drop();
  });

  @Injectable()
  class OrderService {
    constructor(readonly tx: TransactionContext) {}

    /** A reminder, due `delayMs` after it is stored. */
    @TransactionalMessage<[string, string, number]>({ topic: topic.reminder, key: ([key]) => key, body: ([, note]) => ({ note }), delayMs: ([, , ms]) => ms })
    async remind(key: string, note: string, delayMs: number): Promise<void> {
      void delayMs;
      await this.tx.getRepository(ShopOrder).insert({ id: randomUUID(), amount: 1 });
    }

    /** An ordinary message of the same key, or one delayed from inside the method. */
    @TransactionalMessage<[string, string, number?]>({ topic: topic.reminder, key: ([key]) => key, body: ([, note]) => ({ note }) })
    async event(key: string, note: string, delayMs?: number): Promise<void> {
      if (delayMs !== undefined) currentHalfMessage().setDelay(delayMs);
      await this.tx.getRepository(ShopOrder).insert({ id: randomUUID(), amount: 1 });
    }

    @TransactionalMessage<[string, Date]>({ topic: topic.restart, key: ([key]) => key, body: ([key]) => ({ key }), deliverAt: ([, at]) => at })
    async scheduleAt(key: string, at: Date): Promise<void> {
      void key;
      void at;
    }
  }

  @Injectable()
  class CommitOnCheck {
    @TransactionCheckHandler({ topic: topic.explicit })
    check(): TransactionStatus {
      return TransactionStatus.COMMIT;
    }
  }

  async function boot(options: Partial<TransactionalMessageModuleOptions> = {}, providers: Function[] = [OrderService]) {
    const publisher = (options.publisher as ControlledPublisher | undefined) ?? new ControlledPublisher();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          checkImmunityMs: 100,
          ...options,
          publisher,
          relay: { ...FAST_RELAY, ...options.relay },
          check: { ...FAST_CHECK, ...options.check },
        }),
      ],
      providers: providers as never[],
    }).compile();
    if (!process.env.TM_TEST_LOGS) moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return { app, publisher, producer: app.get(TransactionalMessageProducer) };
  }

  const notesOf = (t: string, key: string) => consumer.of(t).filter((r) => r.key === key).map((r) => (r.json as { note: string }).note);
  const rowOf = async (key: string, note: string) => (await messageRows(db)).find((r) => r.message_key === key && JSON.parse(Buffer.from(r.body).toString('utf8')).note === note)!;

  /**
   * Marked DELIVERED (waited for: the broker acknowledges, and a consumer can read the record, before
   * the relay marks the row), and published no sooner than due, by the database's clock (both times
   * are the database's).
   */
  async function expectPublishedWhenDue(producer: TransactionalMessageProducer, id: string): Promise<StoredMessage> {
    await eventually('marked delivered', async () => (await producer.getMessage(id))?.status === MessageStatus.DELIVERED);
    const message = await producer.getMessage(id);
    expect(message).toMatchObject({ status: MessageStatus.DELIVERED });
    expect(message!.deliverAt).toBeInstanceOf(Date);
    expect(message!.deliveredAt!.getTime()).toBeGreaterThanOrEqual(message!.deliverAt!.getTime());
    return message!;
  }

  it('waits DELAYED until due, while the later messages of its key go out without it; then goes out once', async () => {
    const { app, publisher, producer } = await boot();
    const orders = app.get(OrderService);
    const key = randomUUID();
    await orders.remind(key, 'reminder', 1_500);
    await orders.event(key, 'paid');
    await orders.event(key, 'shipped');

    // The later messages of its key do not wait for it.
    await consumer.waitFor('the messages after the delayed one', () => notesOf(topic.reminder, key).length >= 2);
    const reminder = await rowOf(key, 'reminder');
    expect(reminder.status).toBe(MessageStatus.DELAYED);
    expect(publisher.sentIds()).not.toContain(reminder.id);
    expect((await producer.getMessage(reminder.id))!.deliverAt).toBeInstanceOf(Date);

    await consumer.waitFor('the delayed message, once due', () => notesOf(topic.reminder, key).length >= 3);
    expect(notesOf(topic.reminder, key)).toEqual(['paid', 'shipped', 'reminder']);
    await expectPublishedWhenDue(producer, reminder.id);
    expect(publisher.sentIds().filter((id) => id === reminder.id)).toHaveLength(1);
  });

  it('once due, never overtakes an earlier message of its key that still waits (a retry), and the key goes on in write order', async () => {
    const publisher = new ControlledPublisher();
    const { app, producer } = await boot({ publisher });
    const orders = app.get(OrderService);
    const key = randomUUID();
    let refuse = true;
    publisher.inject = (messages) =>
      refuse && messages.some((m) => m.key === key && JSON.parse(m.value.toString('utf8')).note === 'first')
        ? new InjectedFailure('broker says no', { kind: 'message', retriable: true })
        : undefined;
    // The first fails and retries; the second is delayed (set inside the method), due soon; the third is ordinary.
    await orders.event(key, 'first');
    await eventually('the first failed once', async () => Number((await rowOf(key, 'first')).delivery_attempts) >= 1);
    await orders.event(key, 'second (delayed)', 300);
    await orders.event(key, 'third');
    const second = await rowOf(key, 'second (delayed)');
    expect(second.status).toBe(MessageStatus.DELAYED);
    // Due, the delayed message is held back behind the failing first, as the third is.
    await eventually('the delayed message due and COMMITTED', async () => (await producer.getMessage(second.id))?.status === MessageStatus.COMMITTED);
    expect(notesOf(topic.reminder, key)).toEqual([]);
    refuse = false;
    await consumer.waitFor('all three', () => notesOf(topic.reminder, key).length >= 3);
    expect(notesOf(topic.reminder, key)).toEqual(['first', 'second (delayed)', 'third']);
    await expectPublishedWhenDue(producer, second.id);
  });

  it('survives a restart: written with deliverAt by one instance, published when due by the next', async () => {
    const first = await boot();
    const key = randomUUID();
    const due = new Date(Date.now() + 1_500);
    await first.app.get(OrderService).scheduleAt(key, due);
    const [row] = (await messageRows(db)).filter((r) => r.message_key === key);
    expect(row.status).toBe(MessageStatus.DELAYED);
    await first.app.close();
    apps.splice(apps.indexOf(first.app), 1);
    expect(first.publisher.sentIds()).not.toContain(row.id);

    const second = await boot();
    await consumer.waitFor('the scheduled message', () => consumer.of(topic.restart).some((r) => r.key === key));
    const stored = await expectPublishedWhenDue(second.producer, row.id);
    // The instant given, to the millisecond.
    expect(stored.deliverAt!.getTime()).toBe(due.getTime());
    expect(consumer.of(topic.restart).filter((r) => r.key === key)).toHaveLength(1);
  });

  it('through the explicit API and the transaction check: delayed from when it was stored, DELAYED once committed', async () => {
    const { producer } = await boot({}, [OrderService, CommitOnCheck]);
    const key = randomUUID();
    const committed = await producer.sendHalfMessage({ topic: topic.explicit, key, body: { note: 'explicit' }, delayMs: 800 });
    await producer.commit(committed);
    expect((await producer.getMessage(committed))!.status).toBe(MessageStatus.DELAYED);
    // UNKNOWN, then the check commits it: due 1 s after it was stored.
    const checked = await producer.sendMessageInTransaction({ topic: topic.explicit, key: `${key}-checked`, body: { note: 'checked' }, delayMs: 1_000 }, () => TransactionStatus.UNKNOWN);
    await eventually('the check committed it', async () => (await producer.getMessage(checked.messageId))!.checkCount >= 1);
    await consumer.waitFor('both', () => consumer.of(topic.explicit).filter((r) => String(r.key).startsWith(key)).length >= 2);
    for (const id of [committed, checked.messageId]) {
      await expectPublishedWhenDue(producer, id);
    }
  });

  it('is listed by operators with its due time, and drain() publishes it only once due', async () => {
    const { app, producer } = await boot({ relay: { autoStart: false } });
    const relay = app.get(TransactionalMessageRelay);
    const admin = app.get(TransactionalMessageAdmin);
    const key = randomUUID();
    await app.get(OrderService).remind(key, 'later', 700);
    const page = await admin.list({ status: 'DELAYED', key });
    expect(page.messages).toHaveLength(1);
    expect(page.messages[0].deliverAt!.getTime()).toBeGreaterThan(page.messages[0].createdAt.getTime());
    expect((await admin.count({ key })).DELAYED).toBe(1);
    expect(await relay.drain()).toBe(0);
    expect((await producer.getMessage(page.messages[0].id))!.status).toBe(MessageStatus.DELAYED);
    let published = 0;
    await eventually('drain() publishes it once due', async () => (published += await relay.drain()) > 0);
    expect(published).toBe(1);
    await expectPublishedWhenDue(producer, page.messages[0].id);
  });

  it('refuses bad delays with the value and the fix, storing nothing', async () => {
    const { app, producer } = await boot();
    const before = (await messageRows(db)).length;
    const send = (extra: object) => producer.sendHalfMessage({ topic: topic.explicit, body: {}, ...extra });
    await expect(send({ delayMs: -1 })).rejects.toThrow(/Invalid message delayMs -1 .*expected a whole number of milliseconds from 0 to 31536000000/);
    await expect(send({ delayMs: 1.5 })).rejects.toThrow(InvalidMessageError);
    await expect(send({ deliverAt: new Date('not a date') })).rejects.toThrow(/deliverAt .*expected a valid Date/);
    await expect(send({ deliverAt: '2030-01-01' })).rejects.toThrow(/deliverAt "2030-01-01".*expected a valid Date/);
    await expect(send({ deliverAt: new Date(Date.now() + 400 * 86_400_000) })).rejects.toThrow(/at most 365 days ahead/);
    await expect(send({ delayMs: 10, deliverAt: new Date() })).rejects.toThrow(/either delayMs or deliverAt, not both/);
    await expect(app.get(OrderService).event(randomUUID(), 'bad', -5)).rejects.toThrow(/delayMs -5/);
    expect((await messageRows(db)).length).toBe(before);
    // In the decorator: at class definition.
    expect(() => {
      class Bad {
        @TransactionalMessage({ topic: topic.reminder, delayMs: -1 })
        run(): void {}
      }
      return Bad;
    }).toThrow(/delayMs -1/);
  });
});
