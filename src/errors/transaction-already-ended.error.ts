import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * A half message was asked to end one way after it had already ended the other way
 * (commit after rollback, rollback after commit). Ending is terminal.
 */
export class TransactionAlreadyEndedError extends TransactionalMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_TRANSACTION_ALREADY_ENDED'`. */
  static override readonly code: string = 'TM_TRANSACTION_ALREADY_ENDED';

  constructor(
    readonly messageId: string,
    readonly requested: 'COMMIT' | 'ROLLBACK',
    readonly currentStatus: string,
  ) {
    super(
      `Cannot ${requested.toLowerCase()} message ${messageId}: its transaction already ended and the message is ` +
        `${currentStatus}. A half message ends once; to send the event again, send a new message.`,
    );
  }
}
