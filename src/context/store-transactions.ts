import type { EntityManager, QueryRunner } from 'typeorm';
import { ConnectionAcquireTimeoutError } from '../errors/connection-acquire-timeout.error.js';
import { NestedIndependentTransactionError } from '../errors/nested-independent-transaction.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { poolSize } from '../store/dialects/pool-size.js';
import { resolveDialect } from '../store/dialects/resolve-dialect.js';
import type { SqlDialect } from '../store/dialects/sql-dialect.interface.js';
import { serialLockFor } from './serial-lock.js';
import { frameOf, transactionStorage } from './transaction-context.storage.js';

/** Deadlock and serialisation failures: the database aborted the transaction; running it again is safe. */
const DEADLOCK_CODES = new Set(['40P01', '40001', 'ER_LOCK_DEADLOCK', 'SQLITE_BUSY']);

function isDeadlock(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown; errno?: unknown } };
  return DEADLOCK_CODES.has(String(e?.driverError?.code ?? e?.code)) || e?.driverError?.errno === 1213;
}

/**
 * @internal The library's own short transactions (claims, marks, ends, checks, half-message
 * inserts) are idempotent, so a deadlock victim is simply run again (up to 4 tries) instead of
 * failing a relay cycle or a caller's commit().
 */
export async function retryDeadlocks<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (tries >= 4 || !isDeadlock(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 * tries + Math.random() * 10));
    }
  }
}

/**
 * @internal The library's own transactions on the store: claims, marks, ends, checks, the explicit
 * API's half-message inserts, the admin's changes. Each runs outside the caller's transaction
 * context, on a connection of its own (waited for at most `acquireTimeoutMs`), is retried when the
 * database picks it as a deadlock victim, and on SQLite is serialised with every other transaction
 * of the library on the one connection. The caller's transactions (joining, propagation) are
 * {@link TransactionRunner}'s; nothing here joins one.
 */
export class StoreTransactions {
  readonly dialect: SqlDialect;

  constructor(private readonly options: ResolvedOptions) {
    this.dialect = resolveDialect(options.dataSource);
  }

  /**
   * Runs `work` in a transaction of its own, committed when it returns, whatever transaction the
   * caller is in. Outside the caller's context, so the query guard does not apply. Waits at most
   * `acquireTimeoutMs` for a pooled connection (ConnectionAcquireTimeoutError), never forever.
   */
  independent<T>(label: string, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const { dataSource } = this.options;
    const isolation = this.dialect.ownIsolation;
    if (this.dialect.singleConnection) {
      const caller = frameOf(dataSource)?.scope;
      if (caller && !caller.ended) throw new NestedIndependentTransactionError(label);
      return transactionStorage.exit(() =>
        retryDeadlocks(() => serialLockFor(dataSource).run(() => (isolation ? dataSource.transaction(isolation, work) : dataSource.transaction(work)))),
      );
    }
    return transactionStorage.exit(() =>
      retryDeadlocks(() =>
        this.withConnection(label, async (runner) => {
          await runner.startTransaction(isolation);
          try {
            const result = await work(runner.manager);
            await runner.commitTransaction();
            return result;
          } catch (error) {
            if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
            throw error;
          }
        }),
      ),
    );
  }

  /**
   * Runs a single statement's work without an explicit transaction (one round trip instead of
   * BEGIN/statement/COMMIT) where that is safe; on SQLite, still serialised with the library's
   * other transactions on the one connection. `work` gets an EntityManager bound to a QueryRunner.
   */
  async autocommit<T>(label: string, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.dialect.singleConnection) return this.independent(label, work);
    return transactionStorage.exit(() => retryDeadlocks(() => this.withConnection(label, (runner) => work(runner.manager))));
  }

  /** A pooled connection for `work`, waited for at most `acquireTimeoutMs`, released afterwards. */
  private async withConnection<T>(label: string, work: (runner: QueryRunner) => Promise<T>): Promise<T> {
    const runner = this.options.dataSource.createQueryRunner();
    const connecting = runner.connect();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ConnectionAcquireTimeoutError(label, this.options.acquireTimeoutMs, poolSize(this.options.dataSource))),
        this.options.acquireTimeoutMs,
      );
    });
    try {
      await Promise.race([connecting, timeout]);
    } catch (error) {
      // Given up on: hand the connection back whenever the pool produces it.
      void connecting.then(
        () => runner.release(),
        () => runner.release(),
      ).catch(() => undefined);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    try {
      return await work(runner);
    } finally {
      await runner.release();
    }
  }
}
