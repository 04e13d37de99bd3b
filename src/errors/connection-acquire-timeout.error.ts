import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * The library needed a connection of the DataSource's pool for a transaction of its own and none
 * became free within `acquireTimeoutMs`. Nothing was stored or changed by that call.
 */
export class ConnectionAcquireTimeoutError extends TransactionalMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_CONNECTION_ACQUIRE_TIMEOUT'`. */
  static override readonly code: string = 'TM_CONNECTION_ACQUIRE_TIMEOUT';

  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly poolSize: number | undefined,
  ) {
    super(
      `${what} waited ${timeoutMs} ms for a free connection of the DataSource's pool` +
        `${poolSize === undefined ? '' : ` (size ${poolSize})`} and got none; nothing was changed. Every connection ` +
        `is held, possibly by callers that wait for this call: the explicit API called inside a plain ` +
        `dataSource.transaction() needs a second connection. Pass that transaction's EntityManager ({ manager }), ` +
        `or call it inside TransactionContext.runInTransaction() / a @TransactionalMessage method (it joins them), ` +
        `or enlarge the pool. The wait is the module option acquireTimeoutMs.`,
    );
  }
}
