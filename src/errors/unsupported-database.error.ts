import { TransactionalMessageError } from './transactional-message.error.js';

/** The DataSource's driver is not one the message store supports. */
export class UnsupportedDatabaseError extends TransactionalMessageError {
  constructor(readonly driver: string) {
    super(
      `DataSource type ${JSON.stringify(driver)} is not supported by the transactional message store. ` +
        `Use 'postgres', 'mysql', 'mariadb', 'better-sqlite3' or 'sqlite'.`,
    );
  }
}
