import type { MigrationInterface, QueryRunner } from 'typeorm';
import { resolveDialect } from '../store/dialects/resolve-dialect.js';
import type { MigrationClass } from '../store/migrations/message-table.migrations.js';
import { DEFAULT_INBOX_TABLE_NAME, validateTableName } from '../store/table-name.js';

/** Default name of the consumer inbox table. */
export { DEFAULT_INBOX_TABLE_NAME };

/** Options of {@link transactionalMessageInboxMigrations}. */
export interface InboxMigrationsOptions {
  /** Must match the module's `inbox.tableName`. Default `'transactional_message_inbox'`. */
  tableName?: string;
}

/**
 * The TypeORM migration that creates the consumer inbox table (PostgreSQL, MySQL/MariaDB or
 * SQLite), in the consuming service's database. Add it to that DataSource's migrations:
 * `migrations: [...transactionalMessageInboxMigrations(), ...]`.
 */
export function transactionalMessageInboxMigrations(options: InboxMigrationsOptions = {}): MigrationClass[] {
  const table = validateTableName(options.tableName ?? DEFAULT_INBOX_TABLE_NAME, 'transactionalMessageInboxMigrations({ tableName })');
  const suffix = table === DEFAULT_INBOX_TABLE_NAME ? '' : `_${table}`;

  class CreateTransactionalMessageInbox implements MigrationInterface {
    readonly name = `CreateTransactionalMessageInbox${suffix}1763800000001`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const sql of resolveDialect(queryRunner.connection).createInboxTable(table)) await queryRunner.query(sql);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      const q = resolveDialect(queryRunner.connection).quote;
      await queryRunner.query(`DROP TABLE IF EXISTS ${q(table)}`);
    }
  }

  return [CreateTransactionalMessageInbox];
}
