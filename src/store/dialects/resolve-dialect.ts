import type { DataSource } from 'typeorm';
import { UnsupportedDatabaseError } from '../../errors/unsupported-database.error.js';
import { mysqlDialect } from './mysql.dialect.js';
import { postgresDialect } from './postgres.dialect.js';
import type { SqlDialect } from './sql-dialect.interface.js';
import { sqliteDialect } from './sqlite.dialect.js';

/** @internal The dialect for a DataSource's driver, or UnsupportedDatabaseError. */
export function resolveDialect(dataSource: Pick<DataSource, 'options'>): SqlDialect {
  const type = String(dataSource.options.type);
  switch (type) {
    case 'postgres':
      return postgresDialect;
    case 'mysql':
    case 'mariadb':
      return mysqlDialect;
    case 'better-sqlite3':
    case 'sqlite':
      return sqliteDialect;
    default:
      throw new UnsupportedDatabaseError(type);
  }
}
