import { describeValue, TransactionalMessageError } from './transactional-message.error.js';

/** A message field (topic, key, tags, properties, check immunity) is invalid. Nothing was stored. */
export class InvalidMessageError extends TransactionalMessageError {
  constructor(
    readonly field: string,
    readonly value: unknown,
    expected: string,
    where?: string,
  ) {
    super(
      `Invalid message ${field} ${describeValue(value)}${where ? ` in ${where}` : ''}: expected ${expected}. ` +
        `Nothing was stored.`,
    );
  }
}
