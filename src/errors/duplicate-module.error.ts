import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * `TransactionalMessageModule` is registered more than once in one application. A decorated
 * method cannot say which registration it belongs to, so the last one would silently serve them
 * all (its DataSource, its producer group). The boot fails instead.
 */
export class DuplicateModuleError extends TransactionalMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_DUPLICATE_MODULE'`. */
  static override readonly code: string = 'TM_DUPLICATE_MODULE';

  constructor(readonly registrations: string[]) {
    super(
      `TransactionalMessageModule is registered ${registrations.length} times in this application (${registrations.join('; ')}). ` +
        `One application has one registration: import forRoot()/forRootAsync() once (it is global). Several DataSources ` +
        `(named instances) are not supported yet; keep the message table in the DataSource of the business writes that ` +
        `send messages.`,
    );
  }
}
