import { TransactionUsageError } from './transaction-usage.error.js';

/**
 * Inside a transaction context, a query went to the DataSource on a connection of its own (an
 * injected repository, `dataSource.manager`), so it would not be part of the transaction.
 */
export class QueryOutsideTransactionError extends TransactionUsageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_QUERY_OUTSIDE_TRANSACTION'`. */
  static override readonly code: string = 'TM_QUERY_OUTSIDE_TRANSACTION';

  constructor() {
    super(
      `A query inside a transactional method was sent through a repository or EntityManager that is not ` +
        `bound to its transaction (for example an @InjectRepository() repository or dataSource.manager), so ` +
        `it would run outside the transaction and survive a rollback. Use TransactionContext.manager ` +
        `(or TransactionContext.getRepository(Entity)) inside the method. To allow such queries, set the ` +
        `module option queriesOutsideTransaction to 'warn' or 'allow'.`,
    );
  }
}
