import { TransactionalMessageConfigurationError } from './configuration.error.js';

/** The message table (or the inbox table) does not exist, or cannot be read, in the DataSource's database. */
export class MessageTableMissingError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_MESSAGE_TABLE_MISSING'`. */
  static override readonly code: string = 'TM_MESSAGE_TABLE_MISSING';

  constructor(
    readonly tableName: string,
    cause: string,
    migrations = 'transactionalMessageMigrations',
  ) {
    super(
      `The table ${JSON.stringify(tableName)} cannot be read (${cause}). Run the library's ` +
        `migrations: add ...${migrations}({ tableName: ${JSON.stringify(tableName)} }) to your ` +
        `DataSource's migrations and run them (dataSource.runMigrations() or migrationsRun: true).`,
    );
  }
}
