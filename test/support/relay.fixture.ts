import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../../src/index.js';
import { KafkaPublisher } from '../../src/index.js';
import { KAFKA_BROKERS, KAFKA_CLIENT } from './kafka.js';

/** An error the ControlledPublisher throws, carrying how the relay should classify it. */
export class InjectedFailure extends Error {
  constructor(
    message: string,
    readonly failure: PublishFailure,
  ) {
    super(message);
  }
}

/**
 * The real Kafka publisher with controls for fault tests: gates that hold `connect`/`publish`
 * until released, and an injector that fails chosen publishes before they reach Kafka. Records
 * every batch that went through to Kafka.
 */
export class ControlledPublisher implements MessagePublisher {
  readonly sent: OutgoingMessage[][] = [];
  connectGate: Promise<void> | undefined;
  publishGate: Promise<void> | undefined;
  /** Returns an error to throw instead of publishing `messages`, or undefined to publish. */
  inject: ((messages: readonly OutgoingMessage[]) => Error | undefined) | undefined;
  connectCalls = 0;
  publishCalls = 0;
  /** Publishes that returned or threw. */
  publishSettled = 0;

  constructor(readonly inner: MessagePublisher = new KafkaPublisher({ ...KAFKA_CLIENT, brokers: KAFKA_BROKERS, clientId: 'tm-test-relay' })) {}

  async connect(): Promise<void> {
    this.connectCalls++;
    await this.connectGate;
    await this.inner.connect();
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    this.publishCalls++;
    try {
      await this.publishGate;
      const error = this.inject?.(messages);
      if (error) throw error;
      await this.inner.publish(messages);
      this.sent.push([...messages]);
    } finally {
      this.publishSettled++;
    }
  }

  classify(error: unknown): PublishFailure {
    return error instanceof InjectedFailure ? error.failure : this.inner.classify(error);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  sentIds(): string[] {
    return this.sent.flat().map((m) => m.id);
  }
}

/** A gate: `wait` is pending until `open()`. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Relay timings fast enough for tests (production defaults are seconds). */
export const FAST_RELAY = {
  // Delivered messages kept (the default, 0, deletes them): the tests look at their status.
  retentionMs: 7 * 86_400_000,
  pollIntervalMs: 50,
  leaseMs: 5_000,
  backoffInitialMs: 20,
  backoffMaxMs: 200,
  shutdownTimeoutMs: 2_000,
} as const;

export const FAST_CHECK = {
  intervalMs: 100,
  handlerTimeoutMs: 300,
  maxChecks: 15,
} as const;

/**
 * Watches the claims of a relay (its DeliveryOwnership): how many ran and how many found nothing.
 * A test waits for an empty claim to know that the relay has looked and gone to its wait (a
 * positive sign, instead of sleeping), and may replace a claim's outcome (`intercept`).
 */
export class ClaimWatch {
  started = 0;
  empty = 0;
  /** Runs instead of the `n`th claim (from 1) when it returns something (e.g. a rejection); undefined: the real claim. */
  intercept: ((n: number) => Promise<never> | undefined) | undefined;

  constructor(ownership: { claim(force: boolean): Promise<{ messages: unknown[] }> }) {
    const claim = ownership.claim.bind(ownership);
    ownership.claim = async (force: boolean) => {
      this.started++;
      const replaced = this.intercept?.(this.started);
      if (replaced) return replaced;
      const result = await claim(force);
      if (result.messages.length === 0) this.empty++;
      return result;
    };
  }

  /** Resolves once a claim found nothing (since the watch began), and the relay went on to wait. */
  async idle(): Promise<void> {
    while (this.empty === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setImmediate(resolve));
  }
}
