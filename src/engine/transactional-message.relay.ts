import { CheckScheduler } from '../check/check-scheduler.service.js';
import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import type { DelayedMessageTimer } from '../relay/delayed-message-timer.js';
import { DeliveryRelay } from '../relay/delivery-relay.service.js';

/**
 * The relay on demand, for tests and scripts: publish what is due, run the checks that are due,
 * now, instead of waiting for the relay's loop (or sleeping in a test). Usually with
 * `relay: { autoStart: false }`, so that nothing runs unless the test asks:
 *
 * ```ts
 * await orders.pay(dto);                                  // the message is COMMITTED
 * expect(await app.get(TransactionalMessageRelay).drain()).toBe(1);   // and now published
 * ```
 */
export class TransactionalMessageRelay {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly delivery: DeliveryRelay,
    private readonly checks: CheckScheduler,
    private readonly delayed: DelayedMessageTimer,
  ) {}

  /**
   * Publishes every committed message that is due now and resolves with how many were published
   * (acknowledged by the broker and marked DELIVERED). Delayed messages are published once due: a
   * delayed message whose due time has come is made COMMITTED first and published by this call. A
   * message that fails is retried after its backoff, not by this call. Rejects when the downstream
   * cannot be reached. The messages of the key buckets this instance holds: all of them when it is
   * the only relay running.
   */
  async drain(): Promise<number> {
    this.requireRelay('drain()');
    await this.delayed.promoteDue();
    return this.delivery.drain();
  }

  /**
   * Checks every half message whose check is due now, once each, and resolves with how many were
   * checked. In a test, set `checkImmunityMs: 0` so that a half message is due at once, and call it
   * again for the next check (due after `check.intervalMs`).
   */
  runChecksNow(): Promise<number> {
    this.requireRelay('runChecksNow()');
    return this.checks.runChecksNow();
  }

  private requireRelay(what: string): void {
    if (!this.options.producer || !this.options.relay.enabled) {
      throw new TransactionalMessageError(
        `TransactionalMessageRelay.${what} needs the relay in this instance: ` +
          (this.options.producer ? 'relay.enabled is false.' : 'it has no producerGroup (consumer-only).') +
          ` Use relay: { autoStart: false } to run it only on demand.`,
      );
    }
  }
}
