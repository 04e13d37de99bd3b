import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import {
  InvalidMessageError,
  MessageNotFoundError,
  MessageStatus,
  TransactionAlreadyEndedError,
  TransactionContext,
  TransactionalMessageProducer,
  TransactionStatus,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { createShopApp, ShopOrder } from './support/shop.fixture.js';

describe.each(DATABASE_KINDS)('TransactionalMessageProducer (explicit two-phase API) on %s', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let producer: TransactionalMessageProducer;
  const message = { topic: 'payment.captured', key: 'order-1', tags: 'captured', body: { orderId: 'order-1' } };

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder] });
    app = await createShopApp(db, { checkImmunityMs: 2_000 });
    producer = app.get(TransactionalMessageProducer);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const statusOf = async (id: string) => (await producer.getMessage(id))?.status;

  it('sendHalfMessage stores a HALF message, due for its first check after the immunity', async () => {
    const id = await producer.sendHalfMessage({ ...message, checkImmunityMs: 750 });
    const stored = (await producer.getMessage(id))!;
    expect(stored).toMatchObject({ status: MessageStatus.HALF, topic: 'payment.captured', key: 'order-1', tags: ['captured'] });
    expect(stored.nextCheckAt!.getTime() - stored.createdAt.getTime()).toBe(750);
  });

  it('commit makes it COMMITTED and due; a second commit is a no-op; rollback after commit is refused', async () => {
    const id = await producer.sendHalfMessage(message);
    await producer.commit(id);
    const committed = (await producer.getMessage(id))!;
    expect(committed).toMatchObject({ status: MessageStatus.COMMITTED, nextCheckAt: null });
    expect(committed.nextAttemptAt).not.toBeNull();

    await producer.commit(id);
    expect(await producer.getMessage(id)).toEqual(committed);

    const refused = producer.rollback(id);
    await expect(refused).rejects.toThrow(TransactionAlreadyEndedError);
    await expect(producer.rollback(id)).rejects.toThrow(`Cannot rollback message ${id}: its transaction already ended and the message is COMMITTED`);
    expect(await statusOf(id)).toBe(MessageStatus.COMMITTED);
  });

  it('rollback makes it ROLLED_BACK; a second rollback is a no-op; commit after rollback is refused', async () => {
    const id = await producer.sendHalfMessage(message);
    await producer.rollback(id);
    await producer.rollback(id);
    await expect(producer.commit(id)).rejects.toThrow(TransactionAlreadyEndedError);
    expect(await statusOf(id)).toBe(MessageStatus.ROLLED_BACK);
  });

  it('concurrent commit and rollback of one half message: exactly one wins, the other is refused', async () => {
    const id = await producer.sendHalfMessage(message);
    const [commit, rollback] = await Promise.allSettled([producer.commit(id), producer.rollback(id)]);
    expect([commit.status, rollback.status].sort()).toEqual(['fulfilled', 'rejected']);
    const expected = commit.status === 'fulfilled' ? MessageStatus.COMMITTED : MessageStatus.ROLLED_BACK;
    expect(await statusOf(id)).toBe(expected);
  });

  it('unknown or malformed ids are errors that name the id', async () => {
    const missing = '0190e1a2-0000-7000-8000-000000000000';
    await expect(producer.commit(missing)).rejects.toThrow(MessageNotFoundError);
    await expect(producer.commit(missing)).rejects.toThrow(missing);
    await expect(producer.rollback('not-an-id')).rejects.toThrow(InvalidMessageError);
    await expect(producer.rollback('not-an-id')).rejects.toThrow('"not-an-id"');
  });

  it('sendMessageInTransaction: COMMIT, ROLLBACK and UNKNOWN end the half message accordingly', async () => {
    const seen: string[] = [];
    const committed = await producer.sendMessageInTransaction(message, async ({ messageId }) => {
      // The half message is stored (and committed) before the local transaction runs.
      seen.push((await statusOf(messageId))!);
      return TransactionStatus.COMMIT;
    });
    const rolledBack = await producer.sendMessageInTransaction(message, () => TransactionStatus.ROLLBACK);
    const unknown = await producer.sendMessageInTransaction(message, () => TransactionStatus.UNKNOWN);

    expect(seen).toEqual([MessageStatus.HALF]);
    expect(committed.status).toBe(TransactionStatus.COMMIT);
    expect(await statusOf(committed.messageId)).toBe(MessageStatus.COMMITTED);
    expect(await statusOf(rolledBack.messageId)).toBe(MessageStatus.ROLLED_BACK);
    expect(await statusOf(unknown.messageId)).toBe(MessageStatus.HALF);
  });

  it('sendMessageInTransaction: a local transaction that throws leaves the message HALF and rethrows', async () => {
    let id = '';
    await expect(
      producer.sendMessageInTransaction(message, ({ messageId }) => {
        id = messageId;
        throw new Error('payment provider timed out');
      }),
    ).rejects.toThrow('payment provider timed out');
    expect(await statusOf(id)).toBe(MessageStatus.HALF);
  });

  it('sendMessageInTransaction: an answer that is not a TransactionStatus is refused and leaves the message HALF', async () => {
    let id = '';
    await expect(
      producer.sendMessageInTransaction(message, ({ messageId }) => {
        id = messageId;
        return 'OK' as unknown as TransactionStatus;
      }),
    ).rejects.toThrow(/Invalid message local transaction status "OK" in sendMessageInTransaction: expected TransactionStatus.COMMIT, ROLLBACK or UNKNOWN\. The half message [0-9a-f-]{36} was stored and stays HALF: the transaction check decides it\.$/);
    expect(await statusOf(id)).toBe(MessageStatus.HALF);
  });

  it('inside a transaction, every call runs in it: a commit() whose transaction rolls back is undone, so is a half message', async () => {
    const context = app.get(TransactionContext);
    const committedLater = await producer.sendHalfMessage(message);
    let storedInside = '';
    await expect(
      context.runInTransaction(async () => {
        storedInside = await producer.sendHalfMessage(message);
        await producer.commit(committedLater);
        // The caller's transaction sees its own writes.
        expect(await statusOf(committedLater)).toBe(MessageStatus.COMMITTED);
        expect(await statusOf(storedInside)).toBe(MessageStatus.HALF);
        throw new Error('the business transaction failed');
      }),
    ).rejects.toThrow('the business transaction failed');
    expect(await statusOf(committedLater)).toBe(MessageStatus.HALF);
    expect(await producer.getMessage(storedInside)).toBeNull();

    await context.runInTransaction(async () => {
      await producer.commit(committedLater);
    });
    expect(await statusOf(committedLater)).toBe(MessageStatus.COMMITTED);
  });

  it('with { manager }, calls run in a plain dataSource.transaction() the module cannot see', async () => {
    const id = await producer.sendHalfMessage(message);
    await expect(
      db.dataSource.transaction(async (manager) => {
        await producer.rollback(id, { manager });
        expect((await producer.getMessage(id, { manager }))?.status).toBe(MessageStatus.ROLLED_BACK);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await statusOf(id)).toBe(MessageStatus.HALF);
    await db.dataSource.transaction((manager) => producer.commit(id, { manager }));
    expect(await statusOf(id)).toBe(MessageStatus.COMMITTED);
    await expect(producer.commit(id, { manager: db.dataSource.manager })).rejects.toThrow(InvalidMessageError);
    await expect(producer.commit(id, { manager: db.dataSource.manager })).rejects.toThrow(/EntityManager of a running transaction/);
  });

  it('an id in upper case is the same message on every database', async () => {
    const id = await producer.sendHalfMessage(message);
    expect((await producer.getMessage(id.toUpperCase()))?.id).toBe(id);
    await producer.commit(id.toUpperCase());
    expect(await statusOf(id)).toBe(MessageStatus.COMMITTED);
  });
});
