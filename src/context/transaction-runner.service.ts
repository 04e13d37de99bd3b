import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { TransactionContextEndedError } from '../errors/transaction-context-ended.error.js';
import { TransactionRequiredError } from '../errors/transaction-required.error.js';
import { TransactionRollbackOnlyError } from '../errors/transaction-rollback-only.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { resolveDialect } from '../store/dialects/resolve-dialect.js';
import type { SqlDialect } from '../store/dialects/sql-dialect.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { ClsTransactionBridge } from './cls-transaction.bridge.js';
import { TypeormTransactionalBridge } from './typeorm-transactional.bridge.js';
import type { HalfMessageDraft } from './half-message-draft.js';
import type { IsolationLevel } from '../options/isolation-level.js';
import { serialLockFor } from './serial-lock.js';
import { frameOf, transactionStorage, type TransactionScope } from './transaction-context.storage.js';

function runAll(callbacks: Array<() => void>): void {
  for (const callback of callbacks) callback();
}

/** Throws TransactionRollbackOnlyError when a joined call of `scope` failed. */
function refuseRollbackOnly(label: string, scope: TransactionScope): void {
  if (scope.rollbackOnly) throw new TransactionRollbackOnlyError(label, scope.rollbackOnly.call, scope.rollbackOnly.error);
}

/** @internal How a transactional call wants its transaction. */
export interface TransactionDemand {
  /** Used only when the call opens the transaction; ignored (with a warning) when it joins one. */
  isolationLevel?: IsolationLevel;
  /** Refuse to run unless a caller's transaction can be joined. */
  mandatory?: boolean;
}

/**
 * @internal Joins the caller's transaction or opens one, and runs work in the transaction context.
 * The caller's transaction is, in this order: an outer transactional call of this library on the
 * same DataSource, then an active `@nestjs-cls/transactional` or typeorm-transactional
 * transaction on it. The library's own short transactions on the store are
 * {@link StoreTransactions}', which never join the caller's.
 */
export class TransactionRunner {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly dialect: SqlDialect;
  private readonly isolationWarnings = new Set<string>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly cls: ClsTransactionBridge,
    private readonly typeormTransactional: TypeormTransactionalBridge,
  ) {
    this.dialect = resolveDialect(options.dataSource);
  }

  /** The transaction of the current context on this DataSource, if any (ended or not). */
  currentScope(): TransactionScope | undefined {
    return frameOf(this.options.dataSource)?.scope;
  }

  /**
   * Runs `work` inside the caller's transaction, or in a new one. `draft` becomes the current half
   * message inside `work` (undefined keeps the caller's, if any).
   *
   * A joined call that throws marks the transaction rollback-only: the caller may catch the error,
   * but the transaction will not commit (TransactionRollbackOnlyError), because the failed call's
   * writes cannot be undone on their own.
   */
  async run<T>(
    label: string,
    demand: TransactionDemand,
    draft: HalfMessageDraft | undefined,
    work: (scope: TransactionScope) => Promise<T>,
  ): Promise<T> {
    const outer = transactionStorage.getStore();
    const inScope = (scope: TransactionScope) =>
      transactionStorage.run({ scope, draft: draft ?? outer?.draft, label, outer }, () => work(scope));
    const joined = this.currentScope();
    if (joined) {
      if (joined.ended) throw new TransactionContextEndedError(label);
      this.warnIsolationIgnored(label, demand);
      try {
        return await inScope(joined);
      } catch (error) {
        if (!joined.ended) joined.rollbackOnly ??= { call: label, error };
        throw error;
      }
    }
    const foreignManager = this.foreignManager();
    if (foreignManager) {
      this.warnIsolationIgnored(label, demand);
      // A transaction of another library: its commit is not ours to refuse, and its caller may
      // catch our error and commit. So the call runs in a savepoint: if it fails (or a call that
      // joined it failed), its writes are undone before the error leaves it, and a caller that
      // swallows the error commits nothing of it. Its commit cannot be observed either: once the
      // call returns, nothing of ours may use the transaction, and after-commit work runs (the
      // relay's poll covers a commit that comes later).
      let scope: TransactionScope | undefined;
      try {
        const result = await foreignManager.transaction(async (manager) => {
          scope = this.newScope(manager);
          const value = await inScope(scope);
          refuseRollbackOnly(label, scope);
          return value;
        });
        runAll(scope!.afterCommit);
        return result;
      } finally {
        if (scope) scope.ended = true;
      }
    }
    if (demand.mandatory) throw new TransactionRequiredError(label);
    let opened: TransactionScope | undefined;
    const result = await this.open(demand.isolationLevel, (manager) => {
      const scope = (opened = this.newScope(manager));
      return inScope(scope)
        .then((value) => {
          // Throwing inside the transaction's callback rolls it back.
          refuseRollbackOnly(label, scope);
          return value;
        })
        .finally(() => {
          scope.ended = true;
        });
    });
    if (opened) runAll(opened.afterCommit);
    return result;
  }

  /**
   * The transaction a call of the explicit API should run in: the one passed as `manager`, else
   * the caller's (a transactional call of this module, an `@nestjs-cls/transactional` one), else
   * none. `afterCommit` of a returned scope runs once that transaction committed, when that can be
   * observed.
   */
  callerTransaction(label: string, manager: EntityManager | undefined): { manager: EntityManager; afterCommit?: Array<() => void> } | undefined {
    if (manager !== undefined) {
      if (manager?.connection !== this.options.dataSource || !manager.queryRunner?.isTransactionActive) {
        throw new InvalidMessageError(
          'manager',
          manager?.constructor?.name ?? manager,
          "the EntityManager of a running transaction on the module's DataSource (the one dataSource.transaction() passes to its callback)",
          label,
        );
      }
      return { manager };
    }
    const scope = this.currentScope();
    if (scope) {
      if (scope.ended) throw new TransactionContextEndedError(label);
      return { manager: scope.manager, afterCommit: scope.afterCommit };
    }
    const foreignManager = this.foreignManager();
    return foreignManager ? { manager: foreignManager } : undefined;
  }

  /** Whether a call made now would join a transaction of the caller (this library's or another's) instead of opening one. */
  joinsCallerTransaction(): boolean {
    return this.currentScope() !== undefined || this.foreignManager() !== undefined;
  }

  /** The transaction of `@nestjs-cls/transactional` or typeorm-transactional in progress on the DataSource, if any. */
  private foreignManager(): EntityManager | undefined {
    return this.cls.activeManager() ?? this.typeormTransactional.activeManager();
  }

  private newScope(manager: EntityManager): TransactionScope {
    return { dataSource: this.options.dataSource, manager, ended: false, afterCommit: [], rollbackOnly: undefined };
  }

  private open<T>(isolationLevel: IsolationLevel | undefined, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const { dataSource } = this.options;
    const start = () =>
      this.cls.active
        ? this.cls.open(isolationLevel, work)
        : this.typeormTransactional.active
          ? this.typeormTransactional.open(isolationLevel, work)
          : isolationLevel
          ? dataSource.transaction(isolationLevel, work)
          : dataSource.transaction(work);
    return this.dialect.singleConnection ? serialLockFor(dataSource).run(start) : start();
  }

  private warnIsolationIgnored(label: string, demand: TransactionDemand): void {
    if (!demand.isolationLevel || this.isolationWarnings.has(label)) return;
    this.isolationWarnings.add(label);
    this.logger.warn(
      `${label}: isolationLevel '${demand.isolationLevel}' is ignored because the call joined the caller's transaction ` +
        `(the isolation level is fixed when a transaction starts).`,
    );
  }
}
