import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * PostgreSQL did not know the prepared message INSERT on the connection it ran on (or knew it
 * already): a connection pooler in transaction mode (PgBouncer before 1.21, or without
 * `max_prepared_statements`) hands each transaction another server connection, or something ran
 * `DEALLOCATE` / `DISCARD ALL`. The transaction failed; nothing of it was stored.
 */
export class PreparedStatementUnavailableError extends TransactionalMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_PREPARED_STATEMENT_UNAVAILABLE'`. */
  static override readonly code: string = 'TM_PREPARED_STATEMENT_UNAVAILABLE';

  /** `when`: `'call'`, a business transaction failed; `'boot'`, the boot's check (preparedStatements: true) found statements lost. */
  constructor(
    readonly statement: string,
    readonly driverError: unknown,
    readonly when: 'call' | 'boot' = 'call',
  ) {
    super(
      when === 'boot'
        ? `preparedStatements is true, but a statement prepared in one transaction was unknown in the next one on this ` +
            `DataSource's connections (PostgreSQL ${describe(driverError)}): a connection pooler in transaction mode does ` +
            `this (PgBouncer before 1.21, or without max_prepared_statements), and every message INSERT would fail. Let the ` +
            `pooler keep prepared statements (PgBouncer 1.21+: max_prepared_statements > 0), or set preparedStatements to ` +
            `'auto' (the default: plain queries where statements are lost) or false.`
        : `The message INSERT runs as a prepared statement (${statement}) and PostgreSQL ${describe(driverError)} on this ` +
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
