import { TransactionalMessageConfigurationError } from './configuration.error.js';

/** The DataSource's driver is not one the message store supports. */
export class UnsupportedDatabaseError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_UNSUPPORTED_DATABASE'`. */
  static override readonly code: string = 'TM_UNSUPPORTED_DATABASE';

  constructor(readonly driver: string) {
    super(
      `DataSource type ${JSON.stringify(driver)} is not supported by the transactional message store. ` +
        `Use 'postgres', 'mysql', 'mariadb', 'better-sqlite3' or 'sqlite'.`,
    );
  }
}
