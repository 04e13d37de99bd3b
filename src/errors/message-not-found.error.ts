import { TransactionalMessageError } from './transactional-message.error.js';

/** No message with this id exists in the message table (never stored, or already pruned). */
export class MessageNotFoundError extends TransactionalMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_MESSAGE_NOT_FOUND'`. */
  static override readonly code: string = 'TM_MESSAGE_NOT_FOUND';

  constructor(readonly messageId: string) {
    super(`No transactional message with id ${JSON.stringify(messageId)} exists (never stored, or already pruned).`);
  }
}
