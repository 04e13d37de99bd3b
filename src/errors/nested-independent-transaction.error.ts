import { TransactionUsageError } from './transaction-usage.error.js';

/**
 * On SQLite (one connection per DataSource), something that runs in a transaction of the library's
 * own (the admin service, for example; the explicit API joins the caller's transaction instead) was
 * called inside another transaction, which would wait for itself.
 */
export class NestedIndependentTransactionError extends TransactionUsageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_NESTED_INDEPENDENT_TRANSACTION'`. */
  static override readonly code: string = 'TM_NESTED_INDEPENDENT_TRANSACTION';

  constructor(readonly what: string) {
    super(
      `${what} runs in a transaction of its own, but it was called inside a transaction, and SQLite has a single ` +
        `connection per DataSource, so the two cannot run side by side (the second would wait for the first forever). ` +
        `Call it after the transaction has ended.`,
    );
  }
}
