import { TransactionUsageError } from './transaction-usage.error.js';

/**
 * Code ran in a transaction context after that transaction had ended, typically a
 * `@TransactionalMessage` call or a query that the caller did not `await`.
 */
export class TransactionContextEndedError extends TransactionUsageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_TRANSACTION_CONTEXT_ENDED'`. */
  static override readonly code: string = 'TM_TRANSACTION_CONTEXT_ENDED';

  constructor(readonly what: string) {
    super(
      `${what} ran after its transaction had already ended (committed or rolled back), so its writes would ` +
        `land outside it. Await every call made inside a transactional method before it returns.`,
    );
  }
}
