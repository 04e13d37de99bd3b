import { TransactionUsageError } from './transaction-usage.error.js';

/** Something that needs an active transaction context was used outside one. */
export class NoTransactionContextError extends TransactionUsageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_NO_TRANSACTION_CONTEXT'`. */
  static override readonly code: string = 'TM_NO_TRANSACTION_CONTEXT';

  constructor(readonly what: string) {
    super(
      `${what} is only available inside a @TransactionalMessage method or TransactionContext.runInTransaction(); ` +
        `it was used outside any transaction context.`,
    );
  }
}
