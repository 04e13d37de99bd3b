// A unit test as a NestJS 12 app writes it with Vitest, its default test runner: no configuration
// for the library (README, Testing).
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { currentHalfMessage, TransactionalMessage, TransactionStatus } from 'nestjs-transactional-message';
import { captureTransactionalMessages } from 'nestjs-transactional-message/testing';
import { describe, expect, it } from 'vitest';

@Injectable()
class PaymentService {
  @TransactionalMessage<[string, boolean]>({ topic: 'order.paid', key: ([id]) => id, body: ([id]) => ({ id }) })
  async pay(id: string, pending: boolean): Promise<void> {
    if (pending) currentHalfMessage().unknown();
  }
}

describe('a decorated method in a Vitest unit test', () => {
  it('records its message without a database', async () => {
    const capture = captureTransactionalMessages();
    try {
      const payments = capture.bind(new PaymentService());
      await payments.pay('o-1', false);
      await payments.pay('o-2', true);
      expect(capture.messages.map((m) => [m.key, m.outcome])).toEqual([
        ['o-1', TransactionStatus.COMMIT],
        ['o-2', TransactionStatus.UNKNOWN],
      ]);
    } finally {
      capture.stop();
    }
  });
});
