import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * A transaction was used in a way that would break the guarantees, and the call was refused: a
 * `mandatory` method without a caller's transaction, a query that would leave the transaction, a
 * call that outlived it, no transaction context, a transaction that a failed joined call made
 * rollback-only, an independent transaction nested on SQLite's one connection. A bug of the
 * calling code: `code` says which (`TM_QUERY_OUTSIDE_TRANSACTION`, ...; docs/operations.md, Errors).
 */
export class TransactionUsageError extends TransactionalMessageError {
  /** Stable identifier of the category; each error of it carries its own `code`. */
  static override readonly code: string = 'TM_TRANSACTION_USAGE';
}
