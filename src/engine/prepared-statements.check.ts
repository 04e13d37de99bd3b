import { Logger } from '@nestjs/common';
import { PreparedStatementUnavailableError } from '../errors/prepared-statement-unavailable.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { describeError } from '../errors/describe-error.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { MessageStore } from '../store/message.store.js';

/**
 * @internal At boot (PostgreSQL, an instance that writes messages): decides whether the message
 * INSERT runs as a prepared statement (`preparedStatements`). `'auto'` prepares only when a
 * statement prepared in one transaction is known in the next ones on the DataSource's connections
 * (not behind a pooler in transaction mode that drops them); `true` fails the boot when it is not.
 */
export class PreparedStatementsCheck {
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(
    private readonly options: ResolvedOptions,
    private readonly store: MessageStore,
  ) {}

  async decide(): Promise<void> {
    const { preparedStatements: wanted, dataSource, acquireTimeoutMs, producer } = this.options;
    const probe = this.store.dialect.probePreparedStatements;
    if (wanted === false || !probe || !producer) {
      this.store.preparedStatements = false;
      return;
    }
    const found = await probe(dataSource, acquireTimeoutMs);
    if (found.kind === 'kept') {
      this.store.preparedStatements = true;
      this.logger.debug(`The message INSERT runs as a prepared statement (kept across transactions${found.moved ? ', also on another server connection' : ''})`);
      return;
    }
    if (found.kind === 'lost') {
      if (wanted === true) throw new PreparedStatementUnavailableError('tm_probe', found.error, 'boot');
      this.store.preparedStatements = false;
      this.logger.log(
        'The message INSERT runs as a plain query: a statement prepared in one transaction was unknown in the next one on this ' +
          "DataSource's connections (a pooler in transaction mode). PgBouncer 1.21+ keeps them with max_prepared_statements > 0.",
      );
      return;
    }
    // The check could not run (a connection refused): what was asked for, or the safe choice.
    this.store.preparedStatements = wanted === true;
    this.logger.warn(
      `Could not check whether prepared statements survive across transactions (${describeError(found.error)}); ` +
        `the message INSERT runs as ${wanted === true ? 'a prepared statement (preparedStatements: true)' : "a plain query (preparedStatements: 'auto')"}`,
    );
  }
}
