import type { Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
import { emitEvent } from '../../events/transactional-message-events.js';
import type { ResolvedOptions } from '../../options/transactional-message-options.interface.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../../publisher/message-publisher.interface.js';
import { recordBytes } from '../../publisher/record-size.js';
import { toOutgoingMessage } from '../../publisher/to-outgoing-message.js';
import type { MessageRow } from '../../store/message-row.js';
import { startPublishSpans } from '../../telemetry/tracing.js';
import type { DeliveryClaim, DeliveryOwnership } from '../ownership/delivery-ownership.js';

/**
 * @internal One publish of a claim's messages to the downstream while the claim's lease is kept
 * alive, and what a publish needs from a claim: each message's record and its size (built once
 * per claim), the classification of a failure, the `batch.published` event.
 */
export class LeasedPublish {
  /** The lease renewals of the publishes in flight. */
  private readonly heartbeats = new Set<NodeJS.Timeout>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly publisher: MessagePublisher,
    private readonly ownership: DeliveryOwnership,
    private readonly logger: Logger,
    /** Whether the relay still publishes (not stopping). */
    private readonly active: () => boolean,
  ) {}

  /**
   * Publishes `batch`, renewing the lease of what is still `pending` (the batch and the rest of
   * the claim) every third of the lease while the publish lasts: a slow publish (the client's
   * own retries, a broker that is slow to acknowledge) must not outlive the lease, or another
   * relay would take the messages over and publish them too, before this one's acknowledgement.
   * Returns when the lease was last confirmed.
   */
  async publish(claim: DeliveryClaim, batch: readonly MessageRow[], pending: readonly MessageRow[], confirmedAt: number): Promise<number> {
    const { leaseMs } = this.options.relay;
    let lastConfirmed = confirmedAt;
    let renewing: Promise<void> = Promise.resolve();
    const heartbeat = setInterval(() => {
      renewing = renewing.then(async () => {
        const seqs = pending.map((r) => r.seq);
        const still = await this.ownership.renew(claim, seqs).catch(() => undefined);
        if (!still) return;
        lastConfirmed = performance.now();
        if (still.size < seqs.length) {
          emitEvent('lease.lost', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup, count: seqs.length - still.size, during: 'publish' }));
          this.logger.warn(
            `Lease lost during a publish on ${seqs.length - still.size} message(s) (another relay took them over); they may be published twice`,
          );
        }
      });
    }, Math.max(1, Math.floor(leaseMs / 3)));
    this.heartbeats.add(heartbeat);
    try {
      const started = performance.now();
      const traced = startPublishSpans(batch.map((r) => this.record(claim, r).message));
      try {
        await this.publisher.publish(traced.messages);
        traced.end();
      } catch (error) {
        traced.end(error);
        if (error instanceof PartialPublishError) this.published(claim, batch.filter((r) => error.accepted.has(r.id)), started);
        throw error;
      }
      this.published(claim, batch, started);
    } finally {
      clearInterval(heartbeat);
      this.heartbeats.delete(heartbeat);
      await renewing;
    }
    return lastConfirmed;
  }

  /**
   * At shutdown, when a publish did not settle in time (a client without a timeout): it must not
   * keep renewing the lease of what the relay releases, nor keep the process alive with its timer.
   */
  stopRenewals(): void {
    for (const heartbeat of this.heartbeats) clearInterval(heartbeat);
    this.heartbeats.clear();
  }

  /** The record `row` of `claim` is published as, and its size, built once per claim. */
  record(claim: DeliveryClaim, row: MessageRow): { message: OutgoingMessage; bytes: number } {
    const records = (claim.records ??= new Map());
    let record = records.get(row);
    if (!record) {
      const message = toOutgoingMessage(row);
      records.set(row, (record = { message, bytes: recordBytes(message) }));
    }
    return record;
  }

  /**
   * Whose fault a failed publish is. A lone message larger than `maxBatchBytes` whose publish
   * failed as if the broker were unreachable, while the broker answers right after: the broker
   * refused the request for its size (over `socket.request.max.bytes` it closes the connection),
   * so it is the message's fault, retried and eventually DEAD, never an outage that stalls every topic.
   */
  async classify(error: unknown, claim: DeliveryClaim, batch: readonly MessageRow[]): Promise<PublishFailure> {
    const failure = this.publisher.classify(error);
    if (failure.kind !== 'transport' || batch.length !== 1 || this.record(claim, batch[0]).bytes <= this.options.relay.maxBatchBytes || !this.active()) {
      return failure;
    }
    const answers = await this.publisher.connect().then(
      () => true,
      () => false,
    );
    return answers ? { kind: 'message', retriable: true } : failure;
  }

  private published(claim: DeliveryClaim, batch: readonly MessageRow[], started: number): void {
    if (batch.length === 0) return;
    emitEvent('batch.published', () => ({
      instance: this.options.name,
      producerGroup: this.options.producerGroup,
      count: batch.length,
      bytes: batch.reduce((sum, r) => sum + this.record(claim, r).bytes, 0),
      durationMs: performance.now() - started,
      perTopic: batch.reduce<Record<string, number>>((counts, r) => ((counts[r.topic] = (counts[r.topic] ?? 0) + 1), counts), {}),
      oldestCreatedAt: new Date(Math.min(...batch.map((r) => r.createdAt.getTime()))),
    }));
  }
}
