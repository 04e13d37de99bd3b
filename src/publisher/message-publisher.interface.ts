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
 * - `transport`: the downstream cannot take the messages now (unreachable, no leader, not enough
 *   in-sync replicas, a timeout); nothing is wrong with them. The relay backs off as a whole and
 *   counts no attempt against them, however long the outage lasts.
 * - `config`: the client's configuration is wrong (authentication, authorization of the
 *   producer, TLS, an unsupported protocol version). Like `transport`, nothing is counted against
 *   the messages; the relay logs it as an error on every retry, and with the built-in Kafka
 *   publisher the application's boot fails on it.
 * - `message`: this message was refused. `retriable: false` sends it to DEAD at once (for example
 *   over the broker's size limit); otherwise it is retried with backoff up to `maxAttempts`.
 * - `unknown`: not classified. The message is retried with backoff and its attempts are counted
 *   (and logged as errors), but an unknown error alone never sends it DEAD.
 */
export type PublishFailure =
  | { kind: 'transport' }
  | { kind: 'config' }
  | { kind: 'message'; retriable: boolean }
  | { kind: 'unknown' };

/**
 * The publisher port: where committed messages go. Kafka is the built-in adapter (@platformatic/kafka
 * by default, or kafkajs); any other downstream implements these four methods and is passed as the
 * module's `publisher`.
 */
export interface MessagePublisher {
  /** Connects if needed. Called before every publish; cheap when connected. */
  connect(): Promise<void>;
  /**
   * Publishes the messages and resolves once the downstream acknowledged all of them; rejects if
   * any failed. Messages of one key are given in order and must be delivered in that order (a
   * request never holds one key on two topics). When the downstream acknowledged some of them and
   * the publisher knows which, reject with a `PartialPublishError` naming their ids: the relay
   * marks those delivered and retries only the rest (any other rejection: all are retried).
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  /** Says whose fault an error thrown by `connect` or `publish` is. */
  classify(error: unknown): PublishFailure;
  /** Disconnects. Called once no publish is in flight. */
  close(): Promise<void>;
}

/**
 * @internal A publisher whose deliveries are exactly-once per *slot* (a fixed group of key buckets
 * that one relay owns at a time: `kafka.exactlyOnce`, docs/exactly-once.md). The relay's ownership
 * leases slots whole, tells the publisher when it takes one (the publisher takes the slot's
 * transactional id over and recovers before its next send) and when the database recorded
 * messages as delivered; the publisher asks the ownership whether it still holds a slot (after
 * fencing, before it reads what Kafka committed) and has it mark what a recovery found.
 */
export interface SlotTransactions {
  /** Key buckets per slot: slot = floor(bucket / bucketsPerSlot). */
  readonly bucketsPerSlot: number;
  /** Called once by the relay's ownership. */
  bind(owner: SlotOwner): void;
  /** This relay took these slots (again): each is recovered before its next send. */
  taken(slots: readonly number[]): void;
  /** The database recorded these messages as delivered. */
  delivered(ids: readonly string[]): void;
}

/** @internal What a {@link SlotTransactions} publisher asks of the relay's ownership. */
export interface SlotOwner {
  /** Renews the leases and says whether this relay still holds every bucket of `slot`. */
  holds(slot: number): Promise<boolean>;
  /** Marks these messages delivered (those still committed): Kafka committed them, the database may not know. */
  applyMarks(ids: readonly string[]): Promise<void>;
}

/** @internal The publisher's slot transactions, when it delivers exactly once (the relay leases slots then). */
export function slotTransactionsOf(publisher: MessagePublisher | null): SlotTransactions | undefined {
  return (publisher as { slotTransactions?: SlotTransactions } | null)?.slotTransactions;
}
