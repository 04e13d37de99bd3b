import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';

/** The part of @nestjs-cls/transactional's TransactionHost (TypeORM adapter) that is used. */
interface ClsTransactionHost {
  readonly tx: EntityManager;
  isTransactionActive(): boolean;
  withTransaction<R>(options: object, fn: () => Promise<R>): Promise<R>;
}

/** @internal Finds a provider of the application by token, or throws (Nest's `ModuleRef.get(token, { strict: false })`). */
export type ProviderLookup = (token: unknown) => unknown;

/**
 * @internal Joins and opens transactions through `@nestjs-cls/transactional` when the application
 * uses it on the same DataSource, so that `TransactionHost.tx` and `@Transactional()` code share
 * the one transaction with `@TransactionalMessage`. The package is optional: without it (or with
 * `joinClsTransactions: false`) the bridge stays inactive.
 */
export class ClsTransactionBridge {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private host: ClsTransactionHost | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly lookup: ProviderLookup | undefined,
  ) {}

  async connect(): Promise<void> {
    if (!this.options.joinClsTransactions || !this.lookup) return;
    let getTransactionHostToken: (connectionName?: string) => unknown;
    try {
      ({ getTransactionHostToken } = await import('@nestjs-cls/transactional'));
    } catch {
      return; // not installed
    }
    let host: ClsTransactionHost;
    try {
      // This application's TransactionHost (the package also keeps a process-wide static one,
      // which can belong to another application in the same process).
      host = this.lookup(getTransactionHostToken(this.options.clsConnectionName)) as ClsTransactionHost;
    } catch {
      if (this.options.clsConnectionName !== undefined) {
        throw new InvalidModuleOptionsError(
          'clsConnectionName',
          this.options.clsConnectionName,
          'the connectionName of a registered ClsPluginTransactional (none is registered under this name)',
        );
      }
      return; // installed but not registered in this application
    }
    const manager = host.tx as Partial<EntityManager> | undefined;
    if (manager?.connection !== this.options.dataSource) {
      this.logger.debug(
        '@nestjs-cls/transactional is registered for another DataSource (or adapter); its transactions are not joined',
      );
      return;
    }
    this.host = host;
    this.logger.log('Joining @nestjs-cls/transactional transactions on the same DataSource');
  }

  get active(): boolean {
    return this.host !== undefined;
  }

  /** The EntityManager of the cls transaction in progress, if there is one. */
  activeManager(): EntityManager | undefined {
    return this.host?.isTransactionActive() ? this.host.tx : undefined;
  }

  /** Opens a transaction through the cls host; `work` gets its EntityManager. */
  open<T>(isolationLevel: string | undefined, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const host = this.host;
    if (!host) throw new Error('ClsTransactionBridge.open() called while inactive');
    const options = isolationLevel ? { isolationLevel } : {};
    return host.withTransaction(options, () => work(host.tx));
  }
}
