import type { Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { describeError } from '../../errors/describe-error.js';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
import { emitEvent } from '../../events/transactional-message-events.js';
import type { ResolvedOptions } from '../../options/transactional-message-options.interface.js';
import type { PublishFailure } from '../../publisher/message-publisher.interface.js';
import { countWithinBytes } from '../../publisher/record-size.js';
import type { MessageRow } from '../../store/message-row.js';
import type { DeliveryClaim, DeliveryOwnership } from '../ownership/delivery-ownership.js';
import { oneTopicPerKey, withoutSome } from './batch-shaping.js';
import type { DeliveryBookkeeping } from './delivery-bookkeeping.js';
import type { LeasedPublish } from './leased-publish.js';
import { TransportUnavailable } from './transport-unavailable.js';

/** @internal What a {@link ClaimDelivery} works with: the relay's parts. */
export interface ClaimDeliveryParts {
  readonly options: ResolvedOptions;
  readonly ownership: DeliveryOwnership;
  readonly publishing: LeasedPublish;
  readonly bookkeeping: DeliveryBookkeeping;
  readonly logger: Logger;
  /** Whether the relay still publishes (not stopping). */
  active(): boolean;
  /** Messages of another producer group were met (said once per group). */
  reportForeign(rows: readonly MessageRow[]): void;
}

/** @internal What a claim's delivery leaves to mark and to give back (the relay's pipelined mark does it). */
export interface ClaimOutcome {
  delivered: number[];
  release: MessageRow[];
}

/**
 * @internal The publishing of one claim, in order: requests of at most `maxBatchBytes`; the lease
 * confirmed in the database before a publish when it may have run out; a request that fails
 * publishes its messages again one at a time to find the culprit(s) (isolating), whose failures
 * are counted and whose keys' later messages are held back (released, retried behind it); a key
 * that lost a message to another relay is left whole. Resolves with what was published and what
 * is given back; an unreachable downstream finishes the claim and throws TransportUnavailable.
 *
 * State, per claim: `pending` (not yet published, in order), `isolating` (how many of the first
 * pending messages go one at a time), `blockedKeys` (keys whose message failed), `release` (given
 * back when the claim is finished), `delivered`, and when the lease was last confirmed.
 */
export class ClaimDelivery {
  private readonly delivered: number[] = [];
  /** A key a failure held back since the claim was read: its messages wait behind the failure. */
  private readonly release: MessageRow[];
  private readonly blockedKeys: Set<string>;
  private pending: MessageRow[];
  private isolating = 0;

  constructor(
    private readonly claim: DeliveryClaim,
    private leaseConfirmedAt: number,
    private readonly parts: ClaimDeliveryParts,
  ) {
    const { ownership, options } = parts;
    this.release = ownership.heldBack(claim);
    // One table, one producer group (refused at boot; two services that booted together on an
    // empty table can still meet here): another group's messages are never published with this
    // instance's settings. Let go, with the later messages of their keys.
    const foreign = claim.messages.filter((r) => r.producerGroup !== options.producerGroup && !this.release.includes(r));
    this.blockedKeys = new Set<string>(foreign.flatMap((r) => (r.key === null ? [] : [r.key])));
    if (foreign.length > 0) {
      this.release.push(...foreign);
      parts.reportForeign(foreign);
    }
    ownership.letGo(claim, this.release);
    this.pending = withoutSome(claim.messages, this.release);
  }

  async run(): Promise<ClaimOutcome> {
    try {
      while (this.pending.length > 0 && (await this.step()));
    } catch (error) {
      // Anything that ends the claim unexpectedly (a database error while renewing or recording a
      // failure, after its retries): its messages are let go, or they would stay out of every read
      // while the later messages of their keys went out (found by the soak on buckets).
      this.parts.ownership.letGo(this.claim, this.claim.messages);
      throw error;
    }
    return { delivered: this.delivered, release: this.release };
  }

  /** One request (or one held-back message, or one lease confirmation); false once the claim is given up. */
  private async step(): Promise<boolean> {
    if (!this.parts.active() && this.isolating === 0) {
      this.letGo(this.pending);
      return false;
    }
    // Never start a publish on a lease that may have run out: re-confirm it in the database.
    if (performance.now() - this.leaseConfirmedAt > this.parts.options.relay.leaseMs / 2 && !(await this.confirmLease())) return true;
    if (this.holdBackBlockedHead()) return true;
    let batch = this.nextRequest();
    try {
      this.leaseConfirmedAt = await this.parts.publishing.publish(this.claim, batch, this.pending, this.leaseConfirmedAt);
      this.published(batch);
    } catch (thrown) {
      let error = thrown;
      if (thrown instanceof PartialPublishError) {
        // The downstream wrote some of the request (Kafka answers per partition): those are
        // delivered, never published again; only the rest failed.
        const accepted = batch.filter((r) => thrown.accepted.has(r.id));
        this.delivered.push(...accepted.map((r) => r.seq));
        this.pending = withoutSome(this.pending, accepted);
        if (this.isolating > 0) this.isolating = Math.max(0, this.isolating - accepted.length);
        batch = withoutSome(batch, accepted);
        error = thrown.cause;
        if (batch.length === 0) return true;
      }
      await this.failed(batch, error);
    }
    return true;
  }

  /** Renews the lease of what is pending; false when some of it was lost (what is left is sorted out). */
  private async confirmLease(): Promise<boolean> {
    const { ownership, options, logger } = this.parts;
    const still = await ownership.renew(this.claim, this.pending.map((r) => r.seq));
    this.leaseConfirmedAt = performance.now();
    const lost = this.pending.filter((r) => !still.has(r.seq));
    if (lost.length === 0) return true;
    emitEvent('lease.lost', () => ({ instance: options.name, producerGroup: options.producerGroup, count: lost.length, during: 'before-publish' }));
    // A key that lost a message to another relay is left whole: its later messages, still ours,
    // would otherwise go out before the one the other relay holds. Released, they are claimed again
    // behind it.
    const lostKeys = new Set(lost.map((r) => r.key).filter((k): k is string => k !== null));
    const ofLostKey = (r: MessageRow) => r.key !== null && lostKeys.has(r.key);
    const left = this.pending.filter((r) => still.has(r.seq) && ofLostKey(r));
    this.letGo(left);
    // The lost ones are another relay's now (their release is fenced off); they still leave this
    // relay's in-flight set, or a bucket taken back later would never read them again.
    ownership.letGo(this.claim, lost);
    this.pending = this.pending.filter((r) => still.has(r.seq) && !ofLostKey(r));
    this.isolating = Math.min(this.isolating, this.pending.length);
    logger.warn(
      `Lease lost on ${lost.length} message(s) (another relay took them over); not publishing them` +
        (left.length > 0 ? `, nor the ${left.length} later message(s) of their key(s), released` : ''),
    );
    return false;
  }

  /** A key whose message failed keeps its later messages back (released, retried behind it). */
  private holdBackBlockedHead(): boolean {
    const head = this.pending[0];
    if (head.key === null || !this.blockedKeys.has(head.key)) return false;
    this.letGo([head]);
    this.pending = this.pending.slice(1);
    if (this.isolating > 0) this.isolating--;
    return true;
  }

  /** The next request: one message while isolating, else as many as fit `maxBatchBytes`, one topic per key. */
  private nextRequest(): MessageRow[] {
    if (this.isolating > 0) return this.pending.slice(0, 1);
    const { blockedKeys, pending } = this;
    const candidates = oneTopicPerKey(blockedKeys.size === 0 ? pending : pending.filter((r) => r.key === null || !blockedKeys.has(r.key)));
    return candidates.slice(0, countWithinBytes(candidates, this.parts.options.relay.maxBatchBytes, (r) => this.parts.publishing.record(this.claim, r).bytes));
  }

  private published(batch: readonly MessageRow[]): void {
    this.delivered.push(...batch.map((r) => r.seq));
    this.pending = withoutSome(this.pending, batch);
    if (this.isolating > 0) this.isolating--;
  }

  private async failed(batch: MessageRow[], error: unknown): Promise<void> {
    const { publishing, bookkeeping } = this.parts;
    const failure = await publishing.classify(error, this.claim, batch);
    if (failure.kind === 'transport' || failure.kind === 'config' || !this.parts.active()) {
      // Not the messages' fault (when stopping: the publish was cut short by the shutdown).
      await bookkeeping.finish(this.claim, this.delivered, [...this.release, ...this.pending]);
      throw transportError(error, failure);
    }
    if (this.isolating === 0 && batch.length > 1) {
      // Isolate: the same messages again, one by one, in order (then requests again).
      this.pending = [...batch, ...withoutSome(this.pending, batch)];
      this.isolating = batch.length;
      return;
    }
    await bookkeeping.fail(this.claim, batch[0], error, failure);
    if (batch[0].key !== null) this.blockedKeys.add(batch[0].key);
    // Not necessarily pending[0]: after a partial refusal, messages the request left for later (a
    // key's message on a second topic) may come before it.
    this.pending = withoutSome(this.pending, [batch[0]]);
    if (this.isolating > 0) this.isolating--;
  }

  /**
   * What will not be published in this claim is let go at once, not when the claim is finished:
   * the next batch may be read before that, and must see these messages again, before the later
   * messages of their keys.
   */
  private letGo(rows: MessageRow[]): void {
    this.release.push(...rows);
    this.parts.ownership.letGo(this.claim, rows);
  }
}

/** @internal The downstream could not take a publish: the relay backs off. */
export function transportError(error: unknown, failure?: PublishFailure): TransportUnavailable {
  return new TransportUnavailable(describeError(error), failure?.kind === 'config');
}
