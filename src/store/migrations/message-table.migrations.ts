import type { MigrationInterface, QueryRunner } from 'typeorm';
import { resolveDialect } from '../dialects/resolve-dialect.js';
import { DEFAULT_TABLE_NAME, validateTableName } from '../table-name.js';

/** A TypeORM migration class, as `DataSourceOptions.migrations` takes it. */
export type MigrationClass = new () => MigrationInterface;

/** Options of {@link transactionalMessageMigrations}. */
export interface TransactionalMessageMigrationsOptions {
  /** Must match the module's `tableName`. Default `'transactional_message'`. */
  tableName?: string;
}

/**
 * The TypeORM migrations that create the message table and its indexes on PostgreSQL,
 * MySQL/MariaDB or SQLite (whichever the DataSource uses). Add them to your DataSource:
 *
 * ```ts
 * new DataSource({ ..., migrations: [...transactionalMessageMigrations(), ...yourMigrations] })
 * ```
 *
 * then run them as you run your own (`dataSource.runMigrations()`, `migrationsRun: true`, or the
 * TypeORM CLI). Each migration's name carries the table name, so two tables are two migrations.
 */
export function transactionalMessageMigrations(options: TransactionalMessageMigrationsOptions = {}): MigrationClass[] {
  const table = validateTableName(options.tableName ?? DEFAULT_TABLE_NAME, 'transactionalMessageMigrations({ tableName })');
  const suffix = table === DEFAULT_TABLE_NAME ? '' : `_${table}`;

  class CreateTransactionalMessageTable implements MigrationInterface {
    // TypeORM orders migrations by the 13-digit timestamp that ends the name.
    readonly name = `CreateTransactionalMessageTable${suffix}1763800000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const sql of resolveDialect(queryRunner.connection).createTables(table)) {
        await queryRunner.query(sql);
      }
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      for (const sql of resolveDialect(queryRunner.connection).dropTables(table)) {
        await queryRunner.query(sql);
      }
    }
  }

  class AddTransactionalMessageDeadKeyIndex implements MigrationInterface {
    readonly name = `AddTransactionalMessageDeadKeyIndex${suffix}1764600000000`;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const sql of resolveDialect(queryRunner.connection).createDeadKeyIndex(table)) {
        await queryRunner.query(sql);
      }
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      for (const sql of resolveDialect(queryRunner.connection).dropDeadKeyIndex(table)) {
        await queryRunner.query(sql);
      }
    }
  }
  return [CreateTransactionalMessageTable, AddTransactionalMessageDeadKeyIndex];
}
