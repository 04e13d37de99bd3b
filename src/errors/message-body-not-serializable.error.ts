import { TransactionalMessageError } from './transactional-message.error.js';

/** The message body cannot be turned into JSON (BigInt, a cycle, undefined, a function). */
export class MessageBodyNotSerializableError extends TransactionalMessageError {
  constructor(
    readonly topic: string,
    reason: string,
  ) {
    super(
      `The body of the message for topic '${topic}' cannot be serialised to JSON: ${reason}. ` +
        `Pass a JSON-compatible value (convert BigInt to string, remove cycles) or a Buffer/Uint8Array. ` +
        `Nothing was stored; the transaction was rolled back.`,
    );
  }
}
