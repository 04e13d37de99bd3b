import { TransactionalMessageConfigurationError } from './configuration.error.js';
import { describeValue } from './transactional-message.error.js';

/**
 * An option of `TransactionalMessageModule.forRoot()` / `forRootAsync()` (or of another module of
 * the library, which the message names) is missing or invalid.
 */
export class InvalidModuleOptionsError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_INVALID_MODULE_OPTIONS'`. */
  static override readonly code: string = 'TM_INVALID_MODULE_OPTIONS';

  constructor(
    readonly option: string,
    readonly value: unknown,
    expected: string,
    /** The module whose options these are. */
    module = 'TransactionalMessageModule',
    /** Where they are fixed; default the module's forRoot(). */
    fixIn = `${module}.forRoot()${module === 'TransactionalMessageModule' ? '/forRootAsync()' : ''}`,
  ) {
    super(`${module} option '${option}' is ${describeValue(value)}; expected ${expected}. Fix it in ${fixIn}.`);
  }
}
