import { describeValue, TransactionalMessageError } from './transactional-message.error.js';

/**
 * The message of a call is invalid: a field (topic, key, tags, properties, check immunity, id, the
 * `manager` passed), its body (`TM_MESSAGE_BODY_NOT_SERIALIZABLE`) or its size (`TM_MESSAGE_TOO_LARGE`).
 * Refused before anything of it was stored (unless the message says otherwise): fix the input.
 */
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
    /** @internal The whole text, for the errors of this family that say it their own way. */
    text?: string,
  ) {
    super(text ?? `Invalid message ${field} ${describeValue(value)}${where ? ` in ${where}` : ''}: expected ${expected}. ${outcome}`);
  }
}
