import { createHash } from 'node:crypto';
import { QueryFailedError, type EntityManager } from 'typeorm';
import { PreparedStatementUnavailableError } from '../../errors/prepared-statement-unavailable.error.js';

/** What the library uses of a node-postgres client (its public `query(config)`). */
interface PgClientLike {
  query(config: { name: string; text: string; values: unknown[] }): Promise<unknown>;
}

/** The statement names of texts (derived from the text, so one name never stands for two texts). */
const baseNames = new Map<string, string>();
/**
 * Per connection, how many times its server lost the library's statements: each loss gives the
 * texts new names on that connection, so node-postgres (which remembers what it parsed on it)
 * parses them again instead of sending only Bind/Execute for a name the server no longer knows.
 */
const losses = new WeakMap<object, number>();

/**
 * @internal PostgreSQL: runs `text` as a named prepared statement on the connection of `manager`,
 * parsed and planned once per connection, then only bound and executed.
 *
 * Through node-postgres' public API: the query runner's connection (`QueryRunner.connect()`)
 * gets a query config `{ name, text, values }`; nothing of TypeORM or node-postgres is wrapped,
 * and every other query on the connection is untouched (so an instance with
 * `preparedStatements: false` sharing the DataSource is not affected). TypeORM's logger still gets
 * the statement's text and its errors, and a failure is a `QueryFailedError` as from
 * `manager.query()`; TypeORM's query subscribers do not see it (it does not go through TypeORM).
 *
 * When the server does not know the statement (a pooler in transaction mode moved the client to
 * another server connection, or DEALLOCATE / DISCARD ALL ran), the call fails with
 * PreparedStatementUnavailableError naming the fix, and the next call on the connection prepares
 * the statement again under a new name.
 */
export async function queryPreparedPg(manager: EntityManager, text: string, values: unknown[]): Promise<unknown> {
  const runner = manager.queryRunner;
  if (!runner) return manager.query(text, values);
  const client = (await runner.connect()) as PgClientLike | undefined;
  if (!client || typeof client.query !== 'function') return manager.query(text, values);
  const name = nameOf(client, text);
  const logger = manager.connection.logger;
  logger.logQuery(text, values, runner);
  try {
    return await client.query({ name, text, values });
  } catch (error) {
    logger.logQueryError(error as Error, text, values, runner);
    const code = (error as { code?: unknown }).code;
    if (code === UNKNOWN_STATEMENT || code === DUPLICATE_STATEMENT) {
      losses.set(client, (losses.get(client) ?? 0) + 1);
      throw new PreparedStatementUnavailableError(name, error);
    }
    throw new QueryFailedError(text, values, error as Error);
  }
}

function nameOf(client: object, text: string): string {
  let base = baseNames.get(text);
  if (base === undefined) baseNames.set(text, (base = `tm_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`));
  const lost = losses.get(client);
  return lost ? `${base}_${lost}` : base;
}

/** SQLSTATE `invalid_sql_statement_name` ("prepared statement … does not exist") and `duplicate_prepared_statement`. */
const UNKNOWN_STATEMENT = '26000';
const DUPLICATE_STATEMENT = '42P05';
