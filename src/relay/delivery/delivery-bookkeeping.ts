import type { Logger } from '@nestjs/common';
import { isBackgroundStopped } from '../../context/background-work.js';
import { describeError } from '../../errors/describe-error.js';
import { emitEvent } from '../../events/transactional-message-events.js';
import type { ResolvedOptions } from '../../options/transactional-message-options.interface.js';
import type { PublishFailure } from '../../publisher/message-publisher.interface.js';
import type { MessageRow } from '../../store/message-row.js';
import { retryDelayMs } from '../backoff.js';
import type { DeliveryClaim, DeliveryOwnership } from '../ownership/delivery-ownership.js';
import type { DeadRowVacuum } from './dead-row-vacuum.js';

/** Tries of a bookkeeping write before the cycle gives up (10, 20, 40, ... ms apart). */
const BOOKKEEPING_ATTEMPTS = 6;

/**
 * @internal What the relay writes down about a claim once it acted on it: the mark of what was
 * published, the release of what was not, a failed attempt of a message (retry or DEAD). Each
 * write is idempotent and fenced by the claim's lease token, so it is retried on any error a few
 * times: giving up on a mark after a successful publish (an InnoDB deadlock, a dropped
 * connection) would have the message published again once the lease runs out.
 */
export class DeliveryBookkeeping {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly ownership: DeliveryOwnership,
    private readonly logger: Logger,
    /** The relay's claims not yet marked or released (shutdown releases those): a finished claim leaves it. */
    private readonly held: Set<DeliveryClaim>,
    /** Told how many messages each mark and DEAD failure left behind in the claims' index. */
    private readonly vacuum: DeadRowVacuum,
  ) {}

  /** Marks `delivered` and gives back `release`, in this order; the claim is no longer held. */
  async finish(claim: DeliveryClaim, delivered: number[], release: MessageRow[]): Promise<void> {
    this.held.delete(claim);
    try {
      if (delivered.length > 0) {
        const marked = await this.retried('relay.mark', () => this.ownership.markDelivered(claim, delivered));
        this.vacuum.add(marked);
        if (marked < delivered.length) {
          this.logger.warn(
            `${delivered.length - marked} published message(s) had been taken over by another relay before they were marked; ` +
              `they may be delivered twice (the consumer inbox makes that harmless)`,
          );
        }
      }
    } finally {
      // Released even when the mark failed: a message left in flight stays out of every read while
      // the later messages of its key go out.
      await this.release(claim, release);
    }
  }

  /** Gives `rows` of `claim` back without counting an attempt. */
  async release(claim: DeliveryClaim, rows: MessageRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.retried('relay.release', () => this.ownership.release(claim, rows.map((r) => r.seq)));
  }

  /** Counts a failed attempt of `row`: retried after a backoff, or DEAD; said in an event and a log line. */
  async fail(claim: DeliveryClaim, row: MessageRow, error: unknown, failure: PublishFailure): Promise<void> {
    const { maxAttempts, backoffInitialMs, backoffMaxMs } = this.options.relay;
    const attempts = row.deliveryAttempts + 1;
    const unclassified = failure.kind === 'unknown';
    const retriable = unclassified || (failure.kind === 'message' && failure.retriable);
    // An error nobody classified must not use up a message's budget unseen: counted, logged as an
    // error, retried at the backoff, but never the reason a message goes DEAD.
    const dead = !unclassified && (!retriable || attempts >= maxAttempts);
    const delay = retryDelayMs(attempts, backoffInitialMs, backoffMaxMs);
    const reason = describeError(error);
    await this.retried('relay.fail', () => this.ownership.markFailed(claim, row, reason, dead, delay));
    // A DEAD message leaves the committed messages' index (a retry is updated in place).
    if (dead) this.vacuum.add(1);
    emitEvent('message.failed', () => ({
      instance: this.options.name,
      producerGroup: row.producerGroup,
      id: row.id,
      topic: row.topic,
      attempt: attempts,
      error: reason,
      retryInMs: dead ? 0 : delay,
      dead,
      unclassified,
    }));
    if (unclassified) {
      this.logger.error(
        `Message ${row.id} (topic ${row.topic}) failed attempt ${attempts} with an error the publisher does not classify; ` +
          `retry in ${delay} ms (an unclassified error never makes a message DEAD): ${reason}`,
      );
    } else if (dead) {
      this.logger.error(
        `Message ${row.id} (topic ${row.topic}) is DEAD after ${attempts} attempt(s)${retriable ? '' : ' (not retriable)'}: ${reason}. ` +
          `Replay it with TransactionalMessageProducer.replay() once the cause is fixed.`,
      );
    } else {
      this.logger.warn(`Message ${row.id} (topic ${row.topic}) failed attempt ${attempts}/${maxAttempts}; retry in ${delay} ms: ${reason}`);
    }
  }

  private async retried<T>(label: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Marks, releases and failures are single UPDATEs: no explicit transaction needed.
        return await work();
      } catch (error) {
        if (attempt >= BOOKKEEPING_ATTEMPTS || isBackgroundStopped(error)) throw error;
        this.logger.debug(`${label} failed (attempt ${attempt}), retrying: ${describeError(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** attempt));
      }
    }
  }
}
