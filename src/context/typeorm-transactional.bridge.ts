import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';

/** Where typeorm-transactional's `addTransactionalDataSource()` records a DataSource's name. */
const DATA_SOURCE_NAME = '@transactional/data-source';

/** The part of typeorm-transactional that is used. */
interface TypeormTransactional {
  runInTransaction<T>(fn: () => Promise<T>, options: { connectionName: string; isolationLevel?: string }): Promise<T>;
}

/**
 * @internal Joins and opens transactions through `typeorm-transactional` when the DataSource is
 * registered with it (`addTransactionalDataSource`). That library keeps its transaction in a
 * context of its own and patches `dataSource.manager` and every repository to use it, so:
 *
 * - inside its `@Transactional()`, `dataSource.manager` is the transaction's EntityManager: a
 *   decorated call joins that transaction (opening one of its own, the order could roll back while
 *   the message stayed committed);
 * - a transaction a decorated call opens is opened through `runInTransaction`, so that injected
 *   repositories (which typeorm-transactional redirects) write in it too.
 *
 * The package is optional and loaded only for a DataSource registered with it.
 */
export class TypeormTransactionalBridge {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private library: TypeormTransactional | undefined;
  private connectionName: string | undefined;

  constructor(private readonly options: ResolvedOptions) {}

  async connect(): Promise<void> {
    const name = (this.options.dataSource as unknown as Record<string, unknown>)[DATA_SOURCE_NAME];
    if (typeof name !== 'string') return;
    try {
      this.library = (await import('typeorm-transactional')) as unknown as TypeormTransactional;
    } catch (error) {
      this.logger.warn(
        `The DataSource is registered with typeorm-transactional ('${name}'), but the package could not be loaded ` +
          `(${(error as Error)?.message ?? error}): its transactions cannot be joined.`,
      );
      return;
    }
    this.connectionName = name;
    this.logger.log(`Joining typeorm-transactional transactions of data source '${name}'`);
  }

  get active(): boolean {
    return this.library !== undefined;
  }

  /** The EntityManager of typeorm-transactional's transaction in progress on the DataSource, if any. */
  activeManager(): EntityManager | undefined {
    if (!this.library) return undefined;
    const manager = this.options.dataSource.manager;
    const runner = manager.queryRunner;
    return runner && runner.isTransactionActive && !runner.isReleased ? manager : undefined;
  }

  /** Opens a transaction through typeorm-transactional; `work` gets its EntityManager. */
  open<T>(isolationLevel: string | undefined, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const library = this.library;
    if (!library) throw new Error('TypeormTransactionalBridge.open() called while inactive');
    return library.runInTransaction(() => work(this.options.dataSource.manager), {
      connectionName: this.connectionName!,
      ...(isolationLevel ? { isolationLevel } : {}),
    });
  }
}
