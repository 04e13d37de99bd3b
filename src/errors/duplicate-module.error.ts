import { TransactionalMessageConfigurationError } from './configuration.error.js';

/**
 * `TransactionalMessageModule` is registered twice under one name (`forRoot({ name })`, `'default'`
 * without one), or twice on one DataSource's message table. A decorated method could not say which
 * registration it belongs to, or two relays of one application would share a table; the boot fails.
 */
export class DuplicateModuleError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_DUPLICATE_MODULE'`. */
  static override readonly code: string = 'TM_DUPLICATE_MODULE';

  constructor(readonly registrations: string[]) {
    super(
      `TransactionalMessageModule is registered ${registrations.length} times under one name or on one message table in this ` +
        `application (${registrations.join('; ')}). Each registration needs a name of its own (forRoot({ name: 'archive', ... }), ` +
        `at most one without a name) and a DataSource or tableName of its own; decorated methods and check handlers ` +
        `choose theirs with { instance: 'archive' }.`,
    );
  }
}
