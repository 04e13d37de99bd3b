import type { DataSource } from 'typeorm';

/**
 * @internal The size of the DataSource's connection pool, when the driver says it: pg's `max`
 * (default 10), mysql2's `connectionLimit` (default 10). Undefined for SQLite (one connection).
 */
export function poolSize(dataSource: DataSource): number | undefined {
  const driver = dataSource.driver as unknown as {
    master?: { options?: { max?: number } };
    pool?: { config?: { connectionLimit?: number } };
  };
  const type = String(dataSource.options.type);
  if (type === 'postgres') return driver.master?.options?.max ?? 10;
  if (type === 'mysql' || type === 'mariadb') return driver.pool?.config?.connectionLimit ?? 10;
  return undefined;
}
