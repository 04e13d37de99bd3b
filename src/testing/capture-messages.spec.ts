import 'reflect-metadata';
import { currentHalfMessage } from '../context/current-half-message.js';
import { TransactionalMessage } from '../decorators/transactional-message.decorator.js';
import { TransactionalMessageModuleMissingError } from '../errors/module-missing.error.js';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { TransactionStatus } from '../message/transaction-status.enum.js';
import { captureTransactionalMessages, type MessageCapture } from './capture-messages.js';

/** A service as a user writes it, created with `new` as a unit test does. */
class OrderService {
  readonly saved: string[] = [];

  @TransactionalMessage<[string, 'paid' | 'pending' | 'declined']>({ topic: 'order.paid', key: ([id]) => id, tags: 'paid', body: ([id]) => ({ id }) })
  async pay(id: string, result: 'paid' | 'pending' | 'declined'): Promise<void> {
    this.saved.push(id);
    if (result === 'pending') currentHalfMessage().unknown();
    if (result === 'declined') currentHalfMessage().rollback();
  }

  @TransactionalMessage<[string[], boolean]>({ topic: 'order.batch', body: ([ids]) => ({ ids }) })
  async payAll(ids: string[], failAtEnd: boolean): Promise<void> {
    for (const id of ids) await this.pay(id, 'paid');
    if (failAtEnd) throw new Error('batch failed');
  }

  @TransactionalMessage({ topic: 'order.paid', body: () => ({}) })
  async badKey(): Promise<void> {
    currentHalfMessage().setKey('');
  }
}

describe('captureTransactionalMessages', () => {
  let capture: MessageCapture | undefined;
  afterEach(() => capture?.stop());

  it('records the message each call would store, with its outcome, without a module or a database', async () => {
    capture = captureTransactionalMessages();
    const orders = capture.bind(new OrderService());
    await orders.pay('o-1', 'paid');
    await orders.pay('o-2', 'pending');
    await orders.pay('o-3', 'declined');
    expect(capture.messages.map(({ method, topic, key, tags, body, outcome }) => ({ method, topic, key, tags, body, outcome }))).toEqual([
      { method: 'OrderService.pay', topic: 'order.paid', key: 'o-1', tags: ['paid'], body: { id: 'o-1' }, outcome: TransactionStatus.COMMIT },
      { method: 'OrderService.pay', topic: 'order.paid', key: 'o-2', tags: ['paid'], body: { id: 'o-2' }, outcome: TransactionStatus.UNKNOWN },
      { method: 'OrderService.pay', topic: 'order.paid', key: 'o-3', tags: ['paid'], body: { id: 'o-3' }, outcome: TransactionStatus.ROLLBACK },
    ]);
    expect(orders.saved).toEqual(['o-1', 'o-2', 'o-3']);
  });

  it('nested calls share one transaction: kept when the outermost call returns, dropped when it throws', async () => {
    capture = captureTransactionalMessages();
    const orders = capture.bind(new OrderService());
    await orders.payAll(['a', 'b'], false);
    expect(capture.messages.map((m) => m.key ?? m.topic)).toEqual(['a', 'b', 'order.batch']);
    capture.clear();
    await expect(orders.payAll(['c'], true)).rejects.toThrow('batch failed');
    expect(capture.messages).toEqual([]);
  });

  it('validates as in the application, and stop() brings the missing-module error back', async () => {
    capture = captureTransactionalMessages();
    const orders = capture.bind(new OrderService());
    await expect(orders.badKey()).rejects.toThrow(InvalidMessageError);
    capture.stop();
    await expect(orders.pay('o-4', 'paid')).rejects.toThrow(TransactionalMessageModuleMissingError);
    await expect(orders.pay('o-4', 'paid')).rejects.toThrow(/captureTransactionalMessages\(\)\.bind/);
    expect(capture.messages).toEqual([]);
  });

  it('an instance it did not bind is not captured, and two captures side by side keep their own messages', async () => {
    capture = captureTransactionalMessages();
    const other = captureTransactionalMessages();
    try {
      await expect(new OrderService().pay('o-5', 'paid')).rejects.toThrow(TransactionalMessageModuleMissingError);
      await capture.bind(new OrderService()).pay('o-6', 'paid');
      await other.bind(new OrderService()).pay('o-7', 'paid');
      expect(capture.messages.map((m) => m.key)).toEqual(['o-6']);
      expect(other.messages.map((m) => m.key)).toEqual(['o-7']);
    } finally {
      other.stop();
    }
  });

  it('bind() refuses what is not an instance, naming it', () => {
    capture = captureTransactionalMessages();
    expect(() => capture!.bind(undefined as unknown as object)).toThrow(/capture\.bind\(\) takes the service instance.*got undefined/);
  });
});
