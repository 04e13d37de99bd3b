import type { MigrationInterface, QueryRunner } from 'typeorm';
import { resolveDialect } from '../dialects/resolve-dialect.js';
import type { SqlDialect } from '../dialects/sql-dialect.interface.js';
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

  // TypeORM orders migrations by the 13-digit timestamp that ends the name.
  return [
    migration(`CreateTransactionalMessageTable${suffix}1763800000000`, (d) => d.createTables(table), (d) => d.dropTables(table)),
    migration(`AddTransactionalMessageDeadKeyIndex${suffix}1764600000000`, (d) => d.createDeadKeyIndex(table), (d) => d.dropDeadKeyIndex(table)),
    migration(`AddTransactionalMessageOperatorIndex${suffix}1764700000000`, (d) => d.createOperatorIndex(table), (d) => d.dropOperatorIndex(table)),
    migration(`AddTransactionalMessageKeyBuckets${suffix}1764800000000`, (d) => d.createBuckets(table), (d) => d.dropBuckets(table)),
    migration(`RetireTransactionalMessageRowLeases${suffix}1765000000000`, (d) => d.retireRowLeases(table), (d) => d.unretireRowLeases(table)),
    migration(`AddTransactionalMessageDelayedMessages${suffix}1765100000000`, (d) => d.createDelayedMessages(table), (d) => d.dropDelayedMessages(table)),
  ];
}

/** A migration whose statements depend on the database it runs on. */
function migration(name: string, up: (dialect: SqlDialect) => string[], down: (dialect: SqlDialect) => string[]): MigrationClass {
  return class implements MigrationInterface {
    readonly name = name;

    async up(queryRunner: QueryRunner): Promise<void> {
      for (const sql of up(resolveDialect(queryRunner.connection))) await queryRunner.query(sql);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      for (const sql of down(resolveDialect(queryRunner.connection))) await queryRunner.query(sql);
    }
  };
}
