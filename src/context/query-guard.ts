import type { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { QueryOutsideTransactionError } from '../errors/query-outside-transaction.error.js';
import { TransactionContextEndedError } from '../errors/transaction-context-ended.error.js';
import type { QueriesOutsideTransactionMode } from '../options/transactional-message-options.interface.js';
import { frameOf } from './transaction-context.storage.js';

interface Installed {
  original: DataSource['createQueryRunner'];
  guarded: DataSource['createQueryRunner'];
  users: number;
}

const installed = new WeakMap<DataSource, Installed>();

/**
 * @internal Makes a query that would escape the transaction fail loudly.
 *
 * A repository or EntityManager that is not bound to a transaction asks its DataSource for a
 * fresh QueryRunner for every operation. Inside a transaction context, such a request on the same
 * DataSource means the code is about to write outside the transaction, which would survive its
 * rollback. The guard wraps `dataSource.createQueryRunner` to throw (or warn) there, and to refuse
 * any query made after the transaction ended (an un-awaited call). Returns the uninstaller.
 */
export function installQueryGuard(
  dataSource: DataSource,
  mode: QueriesOutsideTransactionMode,
  logger: Logger,
): () => void {
  if (mode === 'allow') return () => undefined;
  const existing = installed.get(dataSource);
  if (existing) {
    existing.users++;
    return () => release(dataSource);
  }
  const original = dataSource.createQueryRunner;
  const warned = new Set<string>();
  const guarded = function (this: DataSource, ...args: Parameters<DataSource['createQueryRunner']>) {
    const frame = frameOf(dataSource);
    if (frame) {
      if (frame.scope.ended) throw new TransactionContextEndedError(`A query in ${frame.label}`);
      if (mode === 'error') throw new QueryOutsideTransactionError();
      if (!warned.has(frame.label)) {
        warned.add(frame.label);
        logger.warn(`${frame.label}: ${new QueryOutsideTransactionError().message}`);
      }
    }
    return original.apply(this, args);
  };
  dataSource.createQueryRunner = guarded;
  installed.set(dataSource, { original, guarded, users: 1 });
  return () => release(dataSource);
}

function release(dataSource: DataSource): void {
  const entry = installed.get(dataSource);
  if (!entry || --entry.users > 0) return;
  if (dataSource.createQueryRunner === entry.guarded) dataSource.createQueryRunner = entry.original;
  installed.delete(dataSource);
}
