import { TransactionalMessageConfigurationError } from './configuration.error.js';
import { describeValue } from './transactional-message.error.js';

/** A `TransactionalMessageModule.forRoot()` / `forRootAsync()` option is missing or invalid. */
export class InvalidModuleOptionsError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_INVALID_MODULE_OPTIONS'`. */
  static override readonly code: string = 'TM_INVALID_MODULE_OPTIONS';

  constructor(
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(
      `TransactionalMessageModule option '${option}' is ${describeValue(value)}; expected ${expected}. ` +
        `Fix it in TransactionalMessageModule.forRoot()/forRootAsync().`,
    );
  }
}
