import { describeValue, TransactionalMessageError } from './transactional-message.error.js';

/** A message field (topic, key, tags, properties, check immunity) is invalid. Nothing was stored (unless the message says otherwise). */
export class InvalidMessageError extends TransactionalMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_INVALID_MESSAGE'`. */
  static override readonly code: string = 'TM_INVALID_MESSAGE';

  constructor(
    readonly field: string,
    readonly value: unknown,
    expected: string,
    where?: string,
    /** What became of the call's writes; by default nothing was stored. */
    outcome = 'Nothing was stored.',
  ) {
    super(`Invalid message ${field} ${describeValue(value)}${where ? ` in ${where}` : ''}: expected ${expected}. ${outcome}`);
  }
}
