import { TransactionalMessageError } from './transactional-message.error.js';

/** Something that needs an active transaction context was used outside one. */
export class NoTransactionContextError extends TransactionalMessageError {
  constructor(readonly what: string) {
    super(
      `${what} is only available inside a @TransactionalMessage method or TransactionContext.runInTransaction(); ` +
        `it was used outside any transaction context.`,
    );
  }
}
