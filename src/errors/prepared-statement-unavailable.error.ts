import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * PostgreSQL did not know the prepared message INSERT on the connection it ran on (or knew it
 * already): a connection pooler in transaction mode (PgBouncer before 1.21, or without
 * `max_prepared_statements`) hands each transaction another server connection, or something ran
 * `DEALLOCATE` / `DISCARD ALL`. The transaction failed; nothing of it was stored.
 */
export class PreparedStatementUnavailableError extends TransactionalMessageError {
  constructor(
    readonly statement: string,
    readonly driverError: unknown,
  ) {
    super(
      `The message INSERT runs as a prepared statement (${statement}) and PostgreSQL ${describe(driverError)} on this ` +
        `connection; the transaction failed and nothing of it was stored. A connection pooler in transaction mode ` +
        `does this (PgBouncer before 1.21, or without max_prepared_statements), as does DEALLOCATE or DISCARD ALL. ` +
        `Set the module option preparedStatements: false, or let the pooler keep prepared statements. The next ` +
        `call on this connection prepares it again.`,
    );
  }
}

function describe(cause: unknown): string {
  const message = (cause as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? `said "${message}"` : 'refused it';
}
