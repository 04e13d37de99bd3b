import { InvalidMessageError } from './invalid-message.error.js';

/** The encoded message (body, key, tags and properties) is over `maxMessageBytes`. */
export class MessageTooLargeError extends InvalidMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_MESSAGE_TOO_LARGE'`. */
  static override readonly code: string = 'TM_MESSAGE_TOO_LARGE';

  constructor(
    readonly topic: string,
    readonly sizeBytes: number,
    readonly maxMessageBytes: number,
  ) {
    super(
      'size',
      sizeBytes,
      `at most ${maxMessageBytes} bytes`,
      topic,
      undefined,
      `The message for topic '${topic}' is ${sizeBytes} bytes, over the limit of ${maxMessageBytes} bytes ` +
        `(option maxMessageBytes). Send a smaller body (for example a reference to the data), or raise ` +
        `maxMessageBytes together with the broker's message.max.bytes. Nothing was stored; the transaction was rolled back.`,
    );
  }
}
