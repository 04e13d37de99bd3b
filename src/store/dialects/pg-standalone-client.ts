import type { DataSource } from 'typeorm';

/** @internal The part of a node-postgres client the library uses outside the pool. */
export interface PgStandaloneClient {
  connect(): Promise<void>;
  query(query: string | { name?: string; text: string }, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
  on(event: 'notification' | 'error' | 'end', listener: (error?: Error) => void): void;
}

/** The part of pg-pool used: how it creates its clients. */
interface PgPool {
  Client: new (options: unknown) => PgStandaloneClient;
  options: Record<string, unknown>;
}

/**
 * @internal PostgreSQL: a new connection made with the DataSource pool's settings but outside the
 * pool (not connected yet), or undefined when the DataSource is not node-postgres. For what must
 * not take a pooled connection from the application (a pool of one would have nothing left).
 */
export function standalonePgClient(dataSource: DataSource, connectTimeoutMs: number): PgStandaloneClient | undefined {
  const pool = (dataSource.driver as unknown as { master?: PgPool }).master;
  if (!pool?.Client) return undefined;
  return new pool.Client({ ...pool.options, connectionTimeoutMillis: connectTimeoutMs });
}
