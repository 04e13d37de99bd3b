import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource, EntityManager } from 'typeorm';
import type { HalfMessageDraft } from './half-message-draft.js';

/** @internal One database transaction, shared by every call that joined it. */
export interface TransactionScope {
  readonly dataSource: DataSource;
  readonly manager: EntityManager;
  /** Set once the transaction committed or rolled back (or, when joined from outside, once our call returned). */
  ended: boolean;
  /** Run once the transaction committed (for a transaction joined from outside: once our call returned). */
  readonly afterCommit: Array<() => void>;
  /** Set when a call that had joined the transaction failed: the transaction must not commit. */
  rollbackOnly: { readonly call: string; readonly error: unknown } | undefined;
}

/** @internal What the current async context runs in. */
export interface ContextFrame {
  readonly scope: TransactionScope;
  /** The half message of the innermost `@TransactionalMessage` method, if any. */
  readonly draft: HalfMessageDraft | undefined;
  /** `Class.method` of the innermost transactional call, for error messages. */
  readonly label: string;
  /** The frame this one was entered from (a transaction on another DataSource, or an outer call). */
  readonly outer: ContextFrame | undefined;
}

/** @internal The one AsyncLocalStorage of the library. */
export const transactionStorage = new AsyncLocalStorage<ContextFrame>();

/**
 * @internal The innermost frame of the current context whose transaction is on `dataSource`:
 * a call on one DataSource made inside a transaction on another still finds its own outer one.
 */
export function frameOf(dataSource: DataSource): ContextFrame | undefined {
  for (let frame = transactionStorage.getStore(); frame; frame = frame.outer) {
    if (frame.scope.dataSource === dataSource) return frame;
  }
  return undefined;
}
