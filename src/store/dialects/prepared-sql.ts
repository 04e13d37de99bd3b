import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { PreparedStatementUnavailableError } from '../../errors/prepared-statement-unavailable.error.js';

/** The part of a node-postgres client the library wraps. */
interface PgClientLike {
  query(config: unknown, values?: unknown, callback?: unknown): unknown;
}

/** The texts the library runs as named prepared statements, and their names. */
const names = new Map<string, string>();
const WRAPPED = Symbol('tm-prepared-statements');
/** The text the library is about to send on a client, to be named on its way. */
const NEXT = Symbol('tm-prepared-next');

type WrappedClient = PgClientLike & { [WRAPPED]?: true; [NEXT]?: string };

/**
 * @internal PostgreSQL: runs `text` as a named prepared statement on the connection of `manager`,
 * parsed and planned once per connection, then only bound and executed, through TypeORM as usual.
 * TypeORM hands node-postgres the SQL as a string; the connection's `query` (wrapped once) names
 * the text announced here when it comes by, once.
 * Every other query on the connection passes through untouched (so an instance with
 * `preparedStatements: false` sharing the DataSource is not affected), and TypeORM's logging,
 * query events and errors see the same string as before. The name is derived from the text, so
 * one name never stands for two texts (node-postgres refuses that).
 *
 * Not a String object or a query object handed through TypeORM: node-postgres copies a query
 * object's own properties on every call (for a String object, one per character: slower than not
 * preparing at all), and TypeORM's query subscribers expect a string.
 *
 * When the server does not know the statement (a pooler in transaction mode moved the client to
 * another server connection, or DEALLOCATE / DISCARD ALL ran), the call fails with
 * PreparedStatementUnavailableError naming the fix, and the next call on the connection parses the
 * statement again.
 */
export async function queryPreparedPg(manager: EntityManager, text: string, values: unknown[]): Promise<unknown> {
  const client = (manager.queryRunner as unknown as { databaseConnection?: PgClientLike } | undefined)?.databaseConnection;
  if (!client || typeof client.query !== 'function') return manager.query(text, values);
  if (!names.has(text)) names.set(text, `tm_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`);
  const marked = client as WrappedClient;
  if (!marked[WRAPPED]) {
    marked[WRAPPED] = true;
    const query = client.query;
    client.query = function (this: WrappedClient, config: unknown, values?: unknown, callback?: unknown) {
      const next = this[NEXT];
      if (next !== undefined && config === next) {
        this[NEXT] = undefined;
        return query.call(this, { name: names.get(next), text: next }, values, callback);
      }
      return query.call(this, config, values, callback);
    };
  }
  marked[NEXT] = text;
  try {
    return await manager.query(text, values);
  } catch (error) {
    const driverError = (error as { driverError?: { code?: unknown } }).driverError ?? error;
    const code = (driverError as { code?: unknown }).code;
    if (code !== UNKNOWN_STATEMENT && code !== DUPLICATE_STATEMENT) throw error;
    // node-postgres believes the statement parsed on this connection: make it parse it again.
    const name = names.get(text)!;
    delete (client as PgClientLike & { connection?: { parsedStatements?: Record<string, unknown> } }).connection?.parsedStatements?.[name];
    throw new PreparedStatementUnavailableError(name, driverError);
  } finally {
    // Named once, by this call only: if TypeORM failed before sending it, nothing later inherits it.
    marked[NEXT] = undefined;
  }
}

/** SQLSTATE `invalid_sql_statement_name` ("prepared statement … does not exist") and `duplicate_prepared_statement`. */
const UNKNOWN_STATEMENT = '26000';
const DUPLICATE_STATEMENT = '42P05';
