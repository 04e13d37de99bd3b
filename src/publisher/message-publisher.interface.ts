/** A committed message on its way downstream. */
export interface OutgoingMessage {
  /** Message id (also in the `tm-message-id` header). */
  readonly id: string;
  readonly topic: string;
  /** Record key; messages with the same key are given in the order they must be delivered. */
  readonly key: string | null;
  /** The body bytes (UTF-8 JSON, or raw bytes). */
  readonly value: Buffer;
  /** The library's headers (`tm-*`) and the message's user properties. */
  readonly headers: Readonly<Record<string, string>>;
  /** When the message was stored (born time), by the database's clock. */
  readonly timestamp: Date;
}

/**
 * Whose fault a publish failure is:
 * - `transport`: the downstream is unreachable; nothing is wrong with the messages. The relay
 *   backs off as a whole and does not count an attempt against them.
 * - `message`: this message was refused. `retriable: false` sends it to DEAD at once (for example
 *   over the broker's size limit); otherwise it is retried with backoff up to `maxAttempts`.
 */
export type PublishFailure = { kind: 'transport' } | { kind: 'message'; retriable: boolean };

/**
 * The publisher port: where committed messages go. Kafka (kafkajs) is the default adapter; any
 * other downstream implements these four methods and is passed as the module's `publisher`.
 */
export interface MessagePublisher {
  /** Connects if needed. Called before every publish; cheap when connected. */
  connect(): Promise<void>;
  /**
   * Publishes the messages and resolves once the downstream acknowledged all of them; rejects if
   * any failed. Messages of one key are given in order and must be delivered in that order.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  /** Says whose fault an error thrown by `connect` or `publish` is. */
  classify(error: unknown): PublishFailure;
  /** Disconnects. Called once no publish is in flight. */
  close(): Promise<void>;
}
