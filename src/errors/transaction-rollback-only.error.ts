import { TransactionUsageError } from './transaction-usage.error.js';

/**
 * A call that had joined the transaction failed, and its caller caught the error and tried to
 * commit. A joined call has no transaction of its own: its business writes cannot be undone
 * alone, and committing the rest would keep them without its message (or keep half of its work).
 * So the failure made the transaction rollback-only (as Spring's REQUIRED propagation does), and
 * the whole transaction was rolled back. `cause` is the joined call's error.
 */
export class TransactionRollbackOnlyError extends TransactionUsageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_TRANSACTION_ROLLBACK_ONLY'`. */
  static override readonly code: string = 'TM_TRANSACTION_ROLLBACK_ONLY';

  constructor(
    readonly method: string,
    readonly failedCall: string,
    override readonly cause: unknown,
  ) {
    super(
      `${method} returned normally, but ${failedCall}, which had joined its transaction, failed: ` +
        `${(cause as Error)?.message ?? String(cause)}. A joined call shares the transaction, so its writes cannot be ` +
        `undone on their own: the whole transaction was rolled back (none of its business writes or messages committed). ` +
        `Let the error propagate, or give the failing step a transaction of its own (call it outside the transaction).`,
    );
  }
}
