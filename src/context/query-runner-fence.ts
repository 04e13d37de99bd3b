import type { EntityManager, QueryRunner } from 'typeorm';
import { TransactionContextEndedError } from '../errors/transaction-context-ended.error.js';
import { transactionStorage } from './transaction-context.storage.js';

const TRANSACTION_CONTROL = /^\s*(COMMIT|ROLLBACK|RELEASE|END)\b/i;
const fenced = new WeakSet<QueryRunner>();

/**
 * @internal Refuses queries sent from a transaction context whose transaction has ended, on that
 * transaction's QueryRunner. A call that was not awaited could otherwise run its query between
 * COMMIT and the runner's release, in autocommit, outside the transaction, or (SQLite shares one
 * runner) inside the next one. The decision is made per calling context, so other contexts that
 * share the runner are not affected; the wrapper is installed once per runner.
 */
export function fenceQueryRunner(manager: EntityManager): void {
  const runner = manager.queryRunner;
  if (!runner || fenced.has(runner)) return;
  fenced.add(runner);
  const query = runner.query;
  runner.query = function (this: QueryRunner, ...args: Parameters<QueryRunner['query']>) {
    const frame = transactionStorage.getStore();
    if (frame?.scope.ended && frame.scope.manager.queryRunner === this && !TRANSACTION_CONTROL.test(String(args[0]))) {
      return Promise.reject(new TransactionContextEndedError(`A query in ${frame.label}`));
    }
    return query.apply(this, args);
  } as QueryRunner['query'];
}
