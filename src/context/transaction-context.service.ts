import type { EntityManager, EntityTarget, ObjectLiteral, Repository } from 'typeorm';
import { NoTransactionContextError } from '../errors/no-transaction-context.error.js';
import { TransactionContextEndedError } from '../errors/transaction-context-ended.error.js';
import { validateIsolationLevel, type IsolationLevel } from '../options/isolation-level.js';
import { TransactionRunner } from './transaction-runner.service.js';

/** Options of {@link TransactionContext.runInTransaction}. */
export interface RunInTransactionOptions {
  /** Isolation level when a transaction is opened; ignored (with a warning) when one is joined. */
  isolationLevel?: IsolationLevel;
  /** Throw TransactionRequiredError instead of opening a transaction. Default `false`. */
  mandatory?: boolean;
}

/**
 * The transaction of the current call, for business code: inside a `@TransactionalMessage`
 * method (or `runInTransaction`), `manager` and `getRepository()` write in the same transaction
 * as the message. Inject it like any provider.
 */
export class TransactionContext {
  constructor(private readonly runner: TransactionRunner) {}

  /** Whether the current call runs inside a transaction of this module that has not ended. */
  get isActive(): boolean {
    const scope = this.runner.currentScope();
    return scope !== undefined && !scope.ended;
  }

  /**
   * The EntityManager of the current transaction. Throws NoTransactionContextError outside one,
   * and TransactionContextEndedError after it ended.
   */
  get manager(): EntityManager {
    const scope = this.runner.currentScope();
    if (!scope) throw new NoTransactionContextError('TransactionContext.manager');
    if (scope.ended) throw new TransactionContextEndedError('TransactionContext.manager');
    return scope.manager;
  }

  /** A repository bound to the current transaction. */
  getRepository<Entity extends ObjectLiteral>(target: EntityTarget<Entity>): Repository<Entity> {
    return this.manager.getRepository(target);
  }

  /**
   * Runs `work` in the caller's transaction, or opens one for it. `@TransactionalMessage` methods
   * called inside join it, so their messages commit or roll back with `work`.
   */
  runInTransaction<T>(work: (manager: EntityManager) => Promise<T>, options: RunInTransactionOptions = {}): Promise<T> {
    const demand = {
      isolationLevel: validateIsolationLevel(options.isolationLevel, 'runInTransaction'),
      mandatory: options.mandatory === true,
    };
    return this.runner.run('TransactionContext.runInTransaction', demand, undefined, (scope) => work(scope.manager));
  }
}
