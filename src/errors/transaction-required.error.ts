import { TransactionUsageError } from './transaction-usage.error.js';

/** A `mandatory` `@TransactionalMessage` method was called without a caller's transaction. */
export class TransactionRequiredError extends TransactionUsageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_TRANSACTION_REQUIRED'`. */
  static override readonly code: string = 'TM_TRANSACTION_REQUIRED';

  constructor(readonly method: string) {
    super(
      `@TransactionalMessage method ${method} is mandatory: it must join a transaction the caller already has, ` +
        `and there is none. Call it from another @TransactionalMessage method, inside ` +
        `TransactionContext.runInTransaction(), or inside an @nestjs-cls/transactional transaction; ` +
        `or drop \`mandatory: true\` to let it open its own.`,
    );
  }
}
