import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * The application's setup is wrong, found at boot (or at the first use of what is missing): a module
 * option, the message table, a second registration, an optional peer that is not installed, a
 * database the library does not support, a publisher refused for its configuration, a decorated
 * class no module serves. Nothing is retried: fix what the message names. `code` says which
 * (`TM_INVALID_MODULE_OPTIONS`, `TM_MESSAGE_TABLE_MISSING`, ...; docs/operations.md, Errors).
 */
export class TransactionalMessageConfigurationError extends TransactionalMessageError {
  /** Stable identifier of the category; each error of it carries its own `code`. */
  static override readonly code: string = 'TM_CONFIGURATION';
}
