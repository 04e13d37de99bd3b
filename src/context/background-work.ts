import type { EntityManager } from 'typeorm';
import { StoreTransactions } from './store-transactions.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { Semaphore } from '../common/semaphore.js';

/**
 * @internal Thrown by {@link BackgroundWork} once the module has stopped: the caller is a relay,
 * checker or pruner continuation that outlived shutdown (a publish or a check handler that did not
 * finish within `shutdownTimeoutMs`). It is not a failure to report; the continuation just ends.
 */
export class BackgroundStoppedError extends Error {
  constructor(label: string) {
    super(`${label}: the module has stopped`);
    this.name = 'BackgroundStoppedError';
  }
}

/** @internal Whether `error` only says that the module has stopped. */
export function isBackgroundStopped(error: unknown): boolean {
  return error instanceof BackgroundStoppedError;
}

/**
 * @internal The database access of the library's background work (relay, checker, pruners). Once
 * the lifecycle closes it, nothing of the library touches the database again: work still in
 * flight at that point (stuck in a publish or a user's check handler past the shutdown timeout)
 * gets a {@link BackgroundStoppedError} on its next query instead of running against a DataSource
 * that the application is about to destroy.
 *
 * It also bounds how many pooled connections the background work holds at once
 * (`relay.maxConnections`), so that business requests are never starved by the library.
 */
export class BackgroundWork {
  private closed = false;
  private readonly connections: Semaphore;

  constructor(
    private readonly transactions: StoreTransactions,
    options: ResolvedOptions,
  ) {
    this.connections = new Semaphore(options.relay.maxConnections);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
  }

  /** A transaction of its own (see StoreTransactions.independent). */
  independent<T>(label: string, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.connections.run(() => (this.closed ? Promise.reject(new BackgroundStoppedError(label)) : this.transactions.independent(label, work)));
  }

  /** One statement without an explicit transaction (see StoreTransactions.autocommit). */
  autocommit<T>(label: string, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.connections.run(() => (this.closed ? Promise.reject(new BackgroundStoppedError(label)) : this.transactions.autocommit(label, work)));
  }
}
