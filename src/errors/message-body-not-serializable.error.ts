import { InvalidMessageError } from './invalid-message.error.js';

/** The message body cannot be turned into JSON (BigInt, a cycle, undefined, a function). */
export class MessageBodyNotSerializableError extends InvalidMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_MESSAGE_BODY_NOT_SERIALIZABLE'`. */
  static override readonly code: string = 'TM_MESSAGE_BODY_NOT_SERIALIZABLE';

  constructor(
    readonly topic: string,
    reason: string,
  ) {
    super(
      'body',
      undefined,
      'a JSON-compatible value or bytes',
      topic,
      undefined,
      `The body of the message for topic '${topic}' cannot be serialised to JSON: ${reason}. ` +
        `Pass a JSON-compatible value (convert BigInt to string, remove cycles) or a Buffer/Uint8Array. ` +
        `Nothing was stored; the transaction was rolled back.`,
    );
  }
}
