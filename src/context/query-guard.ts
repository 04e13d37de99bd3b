import { Logger } from '@nestjs/common';
import type { DataSource, EntitySubscriberInterface, QueryRunner } from 'typeorm';
import { QueryOutsideTransactionError } from '../errors/query-outside-transaction.error.js';
import { TransactionContextEndedError } from '../errors/transaction-context-ended.error.js';
import type { QueriesOutsideTransactionMode, ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { frameOf } from './transaction-context.storage.js';

/** What TypeORM's `beforeQuery` event carries that the fence reads (the same in TypeORM 0.3.20+ and 1.x). */
interface QueryEventLike {
  queryRunner: QueryRunner;
  query: string;
}

const TRANSACTION_CONTROL = /^\s*(COMMIT|ROLLBACK|RELEASE|END)\b/i;

interface Installed {
  users: number;
  fence: EntitySubscriberInterface;
  original?: DataSource['createQueryRunner'];
  guarded?: DataSource['createQueryRunner'];
}

/** One guard per DataSource, shared by the registrations on it. */
const installed = new WeakMap<DataSource, Installed>();

/**
 * @internal Makes a query that would leave the transaction fail loudly. Two parts:
 *
 * **The fence** (a TypeORM subscriber, `beforeQuery`): refuses a query sent after its transaction
 * ended from the transaction's context on that transaction's own QueryRunner (a call that was not
 * awaited would otherwise run between COMMIT and the runner's release, in autocommit, or, on
 * SQLite's one connection, inside the next transaction). Only COMMIT/ROLLBACK/RELEASE pass.
 *
 * **The refusal of new query runners** (`queriesOutsideTransaction`, not under `'allow'`): a
 * repository or EntityManager that is not bound to the transaction asks its DataSource for a
 * fresh QueryRunner for every operation; inside a transaction context on the same DataSource
 * that is a write about to survive the rollback, or (after the end) a query of a call that was
 * not awaited. This is **the library's one patch of another library's object**: it wraps
 * `dataSource.createQueryRunner`, on this DataSource only, for as long as the module runs. Why a
 * subscriber cannot do it: TypeORM announces a query only once its runner holds a connection, so a
 * pool whose connections are all held by transactions that each make such a query would wait
 * forever (PostgreSQL's and MySQL's pools wait without a limit by default) instead of failing; and
 * on SQLite every runner is the same object, so the caller's and the transaction's cannot be told
 * apart by the query. `test/typeorm-shape.e2e-spec.ts` fails if TypeORM stops creating runners
 * through the DataSource for `dataSource.manager`, repositories and `dataSource.query()`.
 */
export class QueryGuard {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private uninstall: () => void = () => undefined;

  constructor(private readonly options: ResolvedOptions) {}

  install(): void {
    this.uninstall();
    this.uninstall = installQueryGuard(this.options.dataSource, this.options.queriesOutsideTransaction, this.logger);
  }

  remove(): void {
    this.uninstall();
    this.uninstall = () => undefined;
  }
}

function installQueryGuard(dataSource: DataSource, mode: QueriesOutsideTransactionMode, logger: Logger): () => void {
  let entry = installed.get(dataSource);
  if (!entry) {
    entry = { users: 0, fence: fenceOf(dataSource) };
    dataSource.subscribers.push(entry.fence);
    if (mode !== 'allow') {
      entry.original = dataSource.createQueryRunner;
      entry.guarded = refusingRunners(dataSource, entry.original, mode, logger);
      dataSource.createQueryRunner = entry.guarded;
    }
    installed.set(dataSource, entry);
  }
  entry.users++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    release(dataSource);
  };
}

function fenceOf(dataSource: DataSource): EntitySubscriberInterface {
  return {
    beforeQuery(event: QueryEventLike): void {
      const frame = frameOf(dataSource);
      if (frame?.scope.ended && frame.scope.manager.queryRunner === event.queryRunner && !TRANSACTION_CONTROL.test(String(event.query))) {
        throw new TransactionContextEndedError(`A query in ${frame.label}`);
      }
    },
  } as EntitySubscriberInterface;
}

function refusingRunners(
  dataSource: DataSource,
  original: DataSource['createQueryRunner'],
  mode: Exclude<QueriesOutsideTransactionMode, 'allow'>,
  logger: Logger,
): DataSource['createQueryRunner'] {
  const warned = new Set<string>();
  return function (this: DataSource, ...args: Parameters<DataSource['createQueryRunner']>) {
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
}

function release(dataSource: DataSource): void {
  const entry = installed.get(dataSource);
  if (!entry || --entry.users > 0) return;
  const at = dataSource.subscribers.indexOf(entry.fence);
  if (at >= 0) dataSource.subscribers.splice(at, 1);
  if (entry.guarded && dataSource.createQueryRunner === entry.guarded) dataSource.createQueryRunner = entry.original!;
  installed.delete(dataSource);
}
