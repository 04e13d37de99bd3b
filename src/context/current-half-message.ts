import { NoTransactionContextError } from '../errors/no-transaction-context.error.js';
import type { HalfMessageHandle } from './half-message-draft.js';
import { transactionStorage } from './transaction-context.storage.js';

/**
 * The half message of the `@TransactionalMessage` method that is running now (the innermost one
 * when they are nested). Throws NoTransactionContextError outside such a method.
 *
 * ```ts
 * @TransactionalMessage({ topic: 'order.paid' })
 * async pay(dto: PayOrderDto) {
 *   const payment = await this.gateway.charge(dto);
 *   if (payment.pending) currentHalfMessage().unknown();   // the check handler decides later
 *   return { orderId: dto.orderId };                          // the message body (default)
 * }
 * ```
 */
export function currentHalfMessage(): HalfMessageHandle {
  const draft = transactionStorage.getStore()?.draft;
  if (!draft) throw new NoTransactionContextError('currentHalfMessage()');
  return draft;
}
