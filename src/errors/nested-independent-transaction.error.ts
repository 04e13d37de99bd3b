import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * On SQLite (one connection per DataSource), a call that needs a transaction of its own was made
 * inside another transaction, which would wait for itself.
 */
export class NestedIndependentTransactionError extends TransactionalMessageError {
  constructor(readonly what: string) {
    super(
      `${what} stores its half message in a transaction of its own, but it was called inside a transaction, and ` +
        `SQLite has a single connection per DataSource, so the two cannot run side by side. Call it outside the ` +
        `transaction, or use @TransactionalMessage to write the message inside it.`,
    );
  }
}
