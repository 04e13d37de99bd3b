import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { standalonePgClient } from './pg-standalone-client.js';

/** What the probe found. */
export type PreparedStatementsProbe =
  /** A statement prepared in one transaction ran in the next ones (`moved`: also on another server connection). */
  | { kind: 'kept'; moved: boolean }
  /** The next transaction ran on a server connection that did not know the statement. */
  | { kind: 'lost'; error: unknown }
  /** The probe could not run (a connection refused, no node-postgres pool). */
  | { kind: 'unknown'; error: unknown };

/** SQLSTATE `invalid_sql_statement_name` and `duplicate_prepared_statement`. */
const STATEMENT_ERRORS = new Set(['26000', '42P05']);
const ROUNDS = 5;

/**
 * @internal PostgreSQL, at boot: whether a named prepared statement survives from one transaction
 * to the next on the DataSource's connections. A pooler in transaction mode (PgBouncer) gives
 * each transaction a server connection from its pool; before PgBouncer 1.21, or without
 * `max_prepared_statements`, a statement prepared on one is unknown on the next.
 *
 * Two connections of its own (the pool's settings, outside the pool): A prepares and runs
 * `SELECT pg_backend_pid()`; B opens a transaction (behind a pooler, on the server connection A
 * just gave back: poolers hand out the most recently used one) and holds it while A runs the
 * statement again, which must then go to another server connection. Repeated a few times.
 * Directly on PostgreSQL (or a pooler in session mode) A keeps its server and the statement.
 */
export async function probePreparedStatements(dataSource: DataSource, connectTimeoutMs: number): Promise<PreparedStatementsProbe> {
  const a = standalonePgClient(dataSource, connectTimeoutMs);
  const b = standalonePgClient(dataSource, connectTimeoutMs);
  if (!a || !b) return { kind: 'unknown', error: new Error('not a node-postgres DataSource') };
  // A connection's failure after connecting ends up here as a rejected query; its 'error' event must not go unhandled.
  a.on('error', () => undefined);
  b.on('error', () => undefined);
  const statement = { name: `tm_probe_${randomBytes(6).toString('hex')}`, text: 'SELECT pg_backend_pid() AS pid' };
  try {
    await Promise.all([a.connect(), b.connect()]);
    const first = (await a.query(statement)).rows[0]?.pid;
    for (let round = 0; round < ROUNDS; round++) {
      await b.query('BEGIN');
      try {
        await b.query('SELECT 1');
        const pid = (await a.query(statement).catch((error: unknown) => {
          if (STATEMENT_ERRORS.has(String((error as { code?: unknown }).code))) throw new StatementLost(error);
          throw error;
        })).rows[0]?.pid;
        if (pid !== first) return { kind: 'kept', moved: true };
      } finally {
        await b.query('COMMIT');
      }
    }
    return { kind: 'kept', moved: false };
  } catch (error) {
    if (error instanceof StatementLost) return { kind: 'lost', error: error.cause };
    return { kind: 'unknown', error };
  } finally {
    await Promise.all([a.end().catch(() => undefined), b.end().catch(() => undefined)]);
  }
}

class StatementLost extends Error {
  constructor(override readonly cause: unknown) {
    super('prepared statement lost');
  }
}
