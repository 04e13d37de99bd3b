import { TransactionalMessageError } from './transactional-message.error.js';

/** No message with this id exists in the message table (never stored, or already pruned). */
export class MessageNotFoundError extends TransactionalMessageError {
  constructor(readonly messageId: string) {
    super(`No transactional message with id ${JSON.stringify(messageId)} exists (never stored, or already pruned).`);
  }
}
