import { Inject, Injectable, Logger } from '@nestjs/common';
import { emitEvent } from '../events/transactional-message-events.js';
import { performance } from 'node:perf_hooks';
import { isBackgroundStopped } from '../context/background-work.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../publisher/message-publisher.interface.js';
import { describeError } from '../errors/describe-error.js';
import { PartialPublishError } from '../errors/partial-publish.error.js';
import { startPublishSpans } from '../telemetry/tracing.js';
import { countWithinBytes, recordBytes } from '../publisher/record-size.js';
import { toOutgoingMessage } from '../publisher/to-outgoing-message.js';
import type { DeliveryClaim } from './ownership/delivery-ownership.js';
import type { MessageRow } from '../store/message-row.js';
import { LOGGER_CONTEXT, MESSAGE_PUBLISHER, RESOLVED_OPTIONS } from '../common/constants.js';
import { DELIVERY_OWNERSHIP, type DeliveryOwnership } from './ownership/delivery-ownership.js';
import { retryDelayMs } from './backoff.js';
import { Doorbell } from '../common/doorbell.js';
import { settlesWithin } from '../common/within.js';

/** Tries of a bookkeeping write before the cycle gives up (10, 20, 40, ... ms apart). */
const BOOKKEEPING_ATTEMPTS = 6;

/** `rows` without the ones in `some` (which are among them), in order. */
function withoutSome(rows: readonly MessageRow[], some: readonly MessageRow[]): MessageRow[] {
  if (some.length === rows.length) return [];
  const taken = new Set(some);
  return rows.filter((r) => !taken.has(r));
}

/**
 * `rows` (in order) without the messages that would put one key on two topics in one request:
 * Kafka accepts or refuses each partition's records on their own, so a key's message on a second
 * topic could be written while its earlier one on the first is refused. From such a message on,
 * the key's messages wait for a later request (in order).
 */
function oneTopicPerKey(rows: readonly MessageRow[]): readonly MessageRow[] {
  if (rows.every((r) => r.topic === rows[0].topic)) return rows;
  let topicOf: Map<string, string> | undefined;
  let deferred: Set<string> | undefined;
  let kept: MessageRow[] | undefined;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    let defer = false;
    if (r.key !== null) {
      topicOf ??= new Map();
      const topic = topicOf.get(r.key);
      if (deferred?.has(r.key)) defer = true;
      else if (topic === undefined) topicOf.set(r.key, r.topic);
      else if (topic !== r.topic) (deferred ??= new Set()).add(r.key), (defer = true);
    }
    if (defer) kept ??= rows.slice(0, i);
    else kept?.push(r);
  }
  return kept ?? rows;
}

/** Thrown inside a cycle when the downstream cannot be reached; the loop backs off. */
class TransportUnavailable extends Error {
  constructor(
    message: string,
    /** The publisher's configuration is wrong (authentication, authorization, TLS), not an outage. */
    readonly config = false,
  ) {
    super(message);
  }
}

/**
 * @internal Publishes committed messages: claim a batch (per-key heads and their followers, under
 * a lease), connect, make sure the lease is still ours, publish, mark. Wakes on the doorbell,
 * polls otherwise, backs off as a whole while the downstream is unreachable.
 */
@Injectable()
export class DeliveryRelay {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private running = false;
  /** The lease renewals of the publishes in flight (see publishUnderLease). */
  private readonly heartbeats = new Set<NodeJS.Timeout>();
  /** drain() calls in progress (they publish whether or not the loop runs). */
  private draining = 0;
  private loop: Promise<void> | undefined;
  /** Claims not yet marked or released (for shutdown). */
  private readonly held = new Set<DeliveryClaim>();
  /** Producer groups other than this instance's whose messages were met (reported once each). */
  private readonly foreignGroups = new Set<string>();
  /** Rung only by a stop: the backoff after a failure waits on it, not on the commits' doorbell. */
  private readonly stopBell = new Doorbell();
  private readonly claimedAt = new WeakMap<DeliveryClaim, number>();
  private pendingMark: Promise<void> = Promise.resolve();
  private transportFailures = 0;
  /** When the loop last began a cycle (performance.now()). */
  private lastTickAt = 0;
  /** When the downstream was first found unavailable in the current outage (Date.now()), if it is. */
  private unavailableSince: number | undefined;

  /** @internal For the health indicator. */
  health(): { running: boolean; sinceLastCycleMs: number; unavailableSince: Date | undefined; failures: number } {
    return {
      running: this.running,
      sinceLastCycleMs: this.running ? performance.now() - this.lastTickAt : 0,
      unavailableSince: this.unavailableSince === undefined ? undefined : new Date(this.unavailableSince),
      failures: this.transportFailures,
    };
  }

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    @Inject(MESSAGE_PUBLISHER) private readonly publisher: MessagePublisher,
    @Inject(DELIVERY_OWNERSHIP) private readonly ownership: DeliveryOwnership,
    private readonly doorbell: Doorbell,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Publishing: the loop runs, or a drain() is in progress. */
  private get active(): boolean {
    return this.running || this.draining > 0;
  }

  /**
   * Publishes every committed message that is due now, batch after batch, and resolves with how
   * many were published once a claim finds nothing more (messages backing off after a failure
   * are not due). For tests and scripts, typically with `relay.autoStart: false`. A downstream that
   * cannot be reached rejects it.
   */
  async drain(): Promise<number> {
    this.draining++;
    try {
      let published = 0;
      for (;;) {
        const claim = await this.claim(true);
        if (claim.messages.length === 0) break;
        try {
          published += await this.deliver(claim);
        } finally {
          this.held.delete(claim);
        }
      }
      await this.pendingMark;
      return published;
    } finally {
      this.draining--;
    }
  }

  /** Stops claiming; waits for the batch in flight up to `shutdownTimeoutMs`, then releases what is left. */
  async stop(): Promise<void> {
    await this.stopLoop();
    await this.ownership.stop();
  }

  private async stopLoop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.doorbell.ring();
    this.stopBell.ring();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.loop!.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(resolve, this.options.relay.shutdownTimeoutMs, false))),
    ]);
    clearTimeout(timer);
    if (!finished) {
      // A publish that never settles (a client without a timeout) must not keep renewing the
      // lease of what is released below, nor keep the process alive with its timer.
      for (const heartbeat of this.heartbeats) clearInterval(heartbeat);
      this.heartbeats.clear();
    }
    if (!finished && this.held.size > 0) {
      let released = 0;
      const releases = (async () => {
        for (const claim of this.held) {
          released += await this.ownership.release(claim, claim.messages.map((r) => r.seq)).catch(() => 0);
        }
      })();
      // The releases wait for a connection like everything else (relay.maxConnections): bounded by
      // another shutdownTimeoutMs, after which the leases simply run out.
      const done = await settlesWithin(releases, this.options.relay.shutdownTimeoutMs);
      this.logger.warn(
        `Shutdown: the batch in flight did not finish in time; released ${released} message(s) for other relays` +
          (done ? '' : ' before the release itself timed out (the rest wait for their lease to run out)'),
      );
    }
  }

  /**
   * The loop is pipelined: while a batch is published, the next one is claimed, and its mark
   * runs while the next batch is published. Two batches in flight never share a key: a batch's
   * messages stay leased until they are marked, so none of its keys has a claimable head.
   */
  private async run(): Promise<void> {
    const { pollIntervalMs, backoffInitialMs, backoffMaxMs, batchSize } = this.options.relay;
    let prefetch: Promise<DeliveryClaim> | undefined;
    while (this.running) {
      this.lastTickAt = performance.now();
      let more = false;
      try {
        const prefetched = prefetch !== undefined;
        let claim = await (prefetch ?? this.claim());
        prefetch = undefined;
        if (claim.messages.length === 0 && prefetched && this.running) {
          // The batch before was full and the prefetch found nothing: its keys were all in flight
          // (a backlog in a few deep keys). Wait for that batch's mark, then look again at once
          // instead of sleeping a poll interval.
          await this.pendingMark;
          claim = await this.claim();
        }
        if (claim.messages.length > 0) {
          more = claim.messages.length >= batchSize;
          if (more && this.running) {
            prefetch = this.claim();
            // Handled from now on: it may reject (a failover, a killed connection, a saturated pool)
            // while the publish below is awaited, before the next turn awaits it; unhandled, that
            // rejection would end the process. The next turn still sees the error.
            prefetch.catch(() => undefined);
          }
          // A batch that fails outside publishing stays leased until its lease expires, then is taken again.
          await this.deliver(claim).finally(() => this.held.delete(claim));
          if (this.transportFailures > 0) {
            this.logger.log(`Downstream available again after ${this.transportFailures} failed attempt(s)`);
            const failures = this.transportFailures;
            emitEvent('relay.recovered', () => ({ producerGroup: this.options.producerGroup, failures }));
            this.transportFailures = 0;
            this.unavailableSince = undefined;
          }
        }
      } catch (error) {
        await this.releasePrefetched(prefetch);
        prefetch = undefined;
        // Stopping: what failed was cut short by the shutdown (a closed publisher, a closed gate).
        if (!this.running || isBackgroundStopped(error)) break;
        if (error instanceof TransportUnavailable) {
          this.transportFailures++;
          this.unavailableSince ??= Date.now();
          const failures = this.transportFailures;
          // Backs off up to backoffMaxMs, woken only by a stop: a commit's doorbell must not turn an
          // outage into one connect (and one authentication attempt, one error line) per commit.
          const delay = retryDelayMs(this.transportFailures, Math.max(backoffInitialMs, 100), Math.max(backoffMaxMs, 100));
          emitEvent('relay.unavailable', () => ({ producerGroup: this.options.producerGroup, error: error.message, config: error.config, failures, retryInMs: delay }));
          if (error.config) {
            this.logger.error(
              `The publisher is misconfigured (${error.message}): nothing can be published until its configuration is fixed. ` +
                `Nothing is counted against the messages; retrying in ${delay} ms`,
            );
          } else if (this.transportFailures === 1) {
            // Once per outage: the retries that follow say nothing new (they go to debug).
            this.logger.warn(`Downstream unavailable (${error.message}); messages wait, nothing is counted against them; retrying with backoff`);
          } else {
            this.logger.debug(`Downstream still unavailable (${error.message}); retry ${this.transportFailures} in ${delay} ms`);
          }
          await this.pause(delay);
          continue;
        }
        this.logger.error(`Relay cycle failed: ${(error as Error)?.stack ?? error}`);
        // The database failed (an outage, a failover): also not woken by commits, which fail too.
        await this.pause(pollIntervalMs);
        continue;
      }
      if (!more && this.running) await this.doorbell.wait(pollIntervalMs);
    }
    await this.releasePrefetched(prefetch);
    await this.pendingMark;
  }

  private async claim(force = false): Promise<DeliveryClaim> {
    const claimedAt = performance.now();
    const claim = await this.ownership.claim(force);
    if (claim.messages.length > 0) {
      this.claimedAt.set(claim, Math.min(claimedAt, claim.confirmedAt ?? claimedAt));
      this.held.add(claim);
    }
    return claim;
  }

  private async releasePrefetched(prefetch: Promise<DeliveryClaim> | undefined): Promise<void> {
    const claim = await prefetch?.catch(() => undefined);
    if (claim && claim.messages.length > 0) {
      await this.release(claim, claim.messages).catch(() => undefined);
      this.held.delete(claim);
    }
  }

  /** Connect, make sure the lease is still ours, publish; the mark is left running (see run()). */
  private async deliver(claim: DeliveryClaim): Promise<number> {
    const { leaseMs, maxBatchBytes } = this.options.relay;
    let leaseConfirmedAt = this.claimedAt.get(claim) ?? performance.now();
    try {
      await this.publisher.connect();
    } catch (error) {
      await this.release(claim, claim.messages);
      this.held.delete(claim);
      throw this.transportError(error, this.publisher.classify(error));
    }
    const delivered: number[] = [];
    // A key a failure held back since the claim was read: its messages wait behind the failure.
    const release: MessageRow[] = this.ownership.heldBack(claim);
    // What will not be published in this claim is let go at once, not when the claim is finished:
    // the next batch may be read before that, and must see these messages again, before the
    // later messages of their keys.
    const letGo = (rows: MessageRow[]) => {
      release.push(...rows);
      this.ownership.letGo(claim, rows);
    };
    // One table, one producer group (refused at boot; two services that booted together on an empty
    // table can still meet here): another group's messages are never published with this
    // instance's settings. Let go, with the later messages of their keys.
    const foreign = claim.messages.filter((r) => r.producerGroup !== this.options.producerGroup && !release.includes(r));
    const blockedKeys = new Set<string>(foreign.flatMap((r) => (r.key === null ? [] : [r.key])));
    if (foreign.length > 0) {
      release.push(...foreign);
      this.reportForeign(foreign);
    }
    this.ownership.letGo(claim, release);
    // Publish in requests of at most maxBatchBytes (a claim of large messages would otherwise be
    // one request over the broker's limit, which it answers by closing the connection); when a
    // request fails, find the culprit(s) among its messages one message at a time, then go on.
    let pending = withoutSome(claim.messages, release);
    let isolating = 0;
    try {
      while (pending.length > 0) {
        if (!this.active && isolating === 0) {
          letGo(pending);
          break;
        }
        // Never start a publish on a lease that may have run out: re-confirm it in the database.
        if (performance.now() - leaseConfirmedAt > leaseMs / 2) {
          const still = await this.ownership.renew(claim, pending.map((r) => r.seq));
          leaseConfirmedAt = performance.now();
          const lost = pending.filter((r) => !still.has(r.seq));
          if (lost.length > 0) {
            emitEvent('lease.lost', () => ({ producerGroup: this.options.producerGroup, count: lost.length, during: 'before-publish' }));
            // A key that lost a message to another relay is left whole: its later messages, still
            // ours, would otherwise go out before the one the other relay holds. Released, they are
            // claimed again behind it.
            const lostKeys = new Set(lost.map((r) => r.key).filter((k): k is string => k !== null));
            const ofLostKey = (r: MessageRow) => r.key !== null && lostKeys.has(r.key);
            const left = pending.filter((r) => still.has(r.seq) && ofLostKey(r));
            letGo(left);
            // The lost ones are another relay's now (their release is fenced off); they still leave
            // this relay's in-flight set, or a bucket taken back later would never read them again.
            this.ownership.letGo(claim, lost);
            pending = pending.filter((r) => still.has(r.seq) && !ofLostKey(r));
            isolating = Math.min(isolating, pending.length);
            this.logger.warn(
              `Lease lost on ${lost.length} message(s) (another relay took them over); not publishing them` +
                (left.length > 0 ? `, nor the ${left.length} later message(s) of their key(s), released` : ''),
            );
            continue;
          }
        }
        // A key whose message failed keeps its later messages back (released, retried behind it).
        if (pending[0].key !== null && blockedKeys.has(pending[0].key)) {
          letGo([pending[0]]);
          pending = pending.slice(1);
          if (isolating > 0) isolating--;
          continue;
        }
        let batch: MessageRow[];
        if (isolating > 0) {
          batch = pending.slice(0, 1);
        } else {
          const candidates = oneTopicPerKey(blockedKeys.size === 0 ? pending : pending.filter((r) => r.key === null || !blockedKeys.has(r.key)));
          batch = candidates.slice(0, countWithinBytes(candidates, maxBatchBytes, (r) => this.record(claim, r).bytes));
        }
        try {
          leaseConfirmedAt = await this.publishUnderLease(claim, batch, pending, leaseConfirmedAt);
          delivered.push(...batch.map((r) => r.seq));
          pending = withoutSome(pending, batch);
          if (isolating > 0) isolating--;
        } catch (thrown) {
          let error = thrown;
          if (thrown instanceof PartialPublishError) {
            // The downstream wrote some of the batch (Kafka answers per partition): those are
            // delivered, never published again; only the rest failed.
            const accepted = batch.filter((r) => thrown.accepted.has(r.id));
            delivered.push(...accepted.map((r) => r.seq));
            pending = withoutSome(pending, accepted);
            if (isolating > 0) isolating = Math.max(0, isolating - accepted.length);
            batch = withoutSome(batch, accepted);
            error = thrown.cause;
            if (batch.length === 0) continue;
          }
          const failure = await this.classify(error, claim, batch);
          if (failure.kind === 'transport' || failure.kind === 'config' || !this.active) {
            // Not the messages' fault (when stopping: the publish was cut short by the shutdown).
            await this.finish(claim, delivered, [...release, ...pending]);
            throw this.transportError(error, failure);
          }
          if (isolating === 0 && batch.length > 1) {
            // Isolate: the same messages again, one by one, in order (then requests again).
            pending = [...batch, ...withoutSome(pending, batch)];
            isolating = batch.length;
            continue;
          }
          await this.fail(claim, batch[0], error, failure);
          if (batch[0].key !== null) blockedKeys.add(batch[0].key);
          // Not necessarily pending[0]: after a partial refusal, messages the request left for
          // later (a key's message on a second topic) may come before it.
          pending = withoutSome(pending, [batch[0]]);
          if (isolating > 0) isolating--;
        }
      }
    } catch (error) {
      // Anything that ends the claim unexpectedly (a database error while renewing or recording a
      // failure, after its retries): its messages are let go, or (key buckets) they would stay out of
      // every read while the later messages of their keys went out (found by the soak on buckets).
      this.ownership.letGo(claim, claim.messages);
      throw error;
    }
    // Published: from here on, shutdown must wait for the mark, never release (a release would
    // un-fence the mark and the batch would be published again).
    this.held.delete(claim);
    // The mark of this batch runs while the next batch is published; at most one mark waits.
    const previous = this.pendingMark;
    const published = delivered.length;
    this.pendingMark = previous.then(() =>
      this.finish(claim, delivered, release).catch((error: unknown) => {
        if (isBackgroundStopped(error)) return;
        this.logger.error(`Marking a published batch failed; it will be published again after its lease: ${describeError(error)}`);
      }),
    );
    await previous;
    return published;
  }

  /**
   * Publishes `batch`, renewing the lease of what is still `pending` (the batch and the rest of
   * the claim) every third of the lease while the publish lasts: a slow publish (the client's
   * own retries, a broker that is slow to acknowledge) must not outlive the lease, or another
   * relay would take the messages over and publish them too, before this one's acknowledgement.
   * Returns when the lease was last confirmed.
   */
  private async publishUnderLease(
    claim: DeliveryClaim,
    batch: readonly MessageRow[],
    pending: readonly MessageRow[],
    confirmedAt: number,
  ): Promise<number> {
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
          emitEvent('lease.lost', () => ({ producerGroup: this.options.producerGroup, count: seqs.length - still.size, during: 'publish' }));
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

  private published(claim: DeliveryClaim, batch: readonly MessageRow[], started: number): void {
    if (batch.length === 0) return;
    emitEvent('batch.published', () => ({
      producerGroup: this.options.producerGroup,
      count: batch.length,
      bytes: batch.reduce((sum, r) => sum + this.record(claim, r).bytes, 0),
      durationMs: performance.now() - started,
      perTopic: batch.reduce<Record<string, number>>((counts, r) => ((counts[r.topic] = (counts[r.topic] ?? 0) + 1), counts), {}),
      oldestCreatedAt: new Date(Math.min(...batch.map((r) => r.createdAt.getTime()))),
    }));
  }

  /** The record `row` of `claim` is published as, and its size, built once per claim. */
  private record(claim: DeliveryClaim, row: MessageRow): { message: OutgoingMessage; bytes: number } {
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
  private async classify(error: unknown, claim: DeliveryClaim, batch: readonly MessageRow[]): Promise<PublishFailure> {
    const failure = this.publisher.classify(error);
    if (failure.kind !== 'transport' || batch.length !== 1 || this.record(claim, batch[0]).bytes <= this.options.relay.maxBatchBytes || !this.active) {
      return failure;
    }
    const answers = await this.publisher.connect().then(
      () => true,
      () => false,
    );
    return answers ? { kind: 'message', retriable: true } : failure;
  }

  private async finish(claim: DeliveryClaim, delivered: number[], release: MessageRow[]): Promise<void> {
    this.held.delete(claim);
    try {
      if (delivered.length > 0) {
        const marked = await this.bookkeeping('relay.mark', () => this.ownership.markDelivered(claim, delivered));
        if (marked < delivered.length) {
          this.logger.warn(
            `${delivered.length - marked} published message(s) had been taken over by another relay before they were marked; ` +
              `they may be delivered twice (the consumer inbox makes that harmless)`,
          );
        }
      }
    } finally {
      // Released even when the mark failed: (key buckets) a message left in flight stays out of
      // every read while the later messages of its key go out.
      await this.release(claim, release);
    }
  }

  private async release(claim: DeliveryClaim, rows: MessageRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.bookkeeping('relay.release', () => this.ownership.release(claim, rows.map((r) => r.seq)));
  }

  /**
   * Runs a write that records what was already done (marks, releases, failures), retrying it on
   * any error a few times: they are idempotent and fenced by the lease token, and giving up on a
   * mark after a successful publish (an InnoDB deadlock, a dropped connection) would have the
   * message published again once the lease runs out.
   */
  private async bookkeeping<T>(label: string, work: () => Promise<T>): Promise<T> {
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

  private async fail(claim: DeliveryClaim, row: MessageRow, error: unknown, failure: PublishFailure): Promise<void> {
    const { maxAttempts, backoffInitialMs, backoffMaxMs } = this.options.relay;
    const attempts = row.deliveryAttempts + 1;
    const unclassified = failure.kind === 'unknown';
    const retriable = unclassified || (failure.kind === 'message' && failure.retriable);
    // An error nobody classified must not use up a message's budget unseen: counted, logged as an
    // error, retried at the backoff, but never the reason a message goes DEAD.
    const dead = !unclassified && (!retriable || attempts >= maxAttempts);
    const delay = retryDelayMs(attempts, backoffInitialMs, backoffMaxMs);
    const reason = describeError(error);
    await this.bookkeeping('relay.fail', () => this.ownership.markFailed(claim, row, reason, dead, delay));
    emitEvent('message.failed', () => ({
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

  private transportError(error: unknown, failure?: PublishFailure): TransportUnavailable {
    return new TransportUnavailable(describeError(error), failure?.kind === 'config');
  }

  private reportForeign(rows: readonly MessageRow[]): void {
    const groups = [...new Set(rows.map((r) => r.producerGroup))].filter((g) => !this.foreignGroups.has(g));
    if (groups.length === 0) return;
    for (const group of groups) this.foreignGroups.add(group);
    this.logger.error(
      `The table ${JSON.stringify(this.options.tableName)} holds messages of producer group(s) ${groups.map((g) => JSON.stringify(g)).join(', ')}: ` +
        `this relay (producer group ${JSON.stringify(this.options.producerGroup)}) does not publish them. One message table serves one ` +
        `producer group: give each service its own tableName.`,
    );
  }

  /** Waits `ms`, cut short only by a stop (never by a commit's doorbell). */
  private async pause(ms: number): Promise<void> {
    if (this.running) await this.stopBell.wait(ms);
  }
}
