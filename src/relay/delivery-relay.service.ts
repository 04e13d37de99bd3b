import { Logger } from '@nestjs/common';
import { emitEvent } from '../events/transactional-message-events.js';
import { performance } from 'node:perf_hooks';
import { isBackgroundStopped } from '../context/background-work.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import type { MessagePublisher } from '../publisher/message-publisher.interface.js';
import { describeError } from '../errors/describe-error.js';
import type { DeliveryClaim } from './ownership/delivery-ownership.js';
import type { MessageRow } from '../store/message-row.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import type { DeliveryOwnership } from './ownership/delivery-ownership.js';
import { retryDelayMs } from './backoff.js';
import { Doorbell } from '../common/doorbell.js';
import { settlesWithin } from '../common/within.js';
import { ClaimDelivery, transportError, type ClaimDeliveryParts } from './delivery/claim-delivery.js';
import { DeliveryBookkeeping } from './delivery/delivery-bookkeeping.js';
import { LeasedPublish } from './delivery/leased-publish.js';
import { TransportUnavailable } from './delivery/transport-unavailable.js';
import type { DeadRowVacuum } from './delivery/dead-row-vacuum.js';

/**
 * @internal Publishes committed messages: claim a batch (per-key heads and their followers, under
 * a lease), connect, publish it (ClaimDelivery), mark. Wakes on the doorbell, polls otherwise,
 * backs off as a whole while the downstream is unreachable; pipelined (the next claim is read while
 * a batch is published, its mark runs while the next one is published); stops within
 * `shutdownTimeoutMs`, releasing what it still holds.
 */
export class DeliveryRelay {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private running = false;
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

  private readonly publishing: LeasedPublish;
  private readonly bookkeeping: DeliveryBookkeeping;
  /** What each claim's ClaimDelivery works with. */
  private readonly parts: ClaimDeliveryParts;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly publisher: MessagePublisher,
    private readonly ownership: DeliveryOwnership,
    private readonly doorbell: Doorbell,
    private readonly vacuum: DeadRowVacuum,
  ) {
    this.publishing = new LeasedPublish(options, publisher, ownership, this.logger, () => this.active);
    this.bookkeeping = new DeliveryBookkeeping(options, ownership, this.logger, this.held, vacuum);
    this.parts = {
      options,
      ownership,
      publishing: this.publishing,
      bookkeeping: this.bookkeeping,
      logger: this.logger,
      active: () => this.active,
      reportForeign: (rows) => this.reportForeign(rows),
    };
  }

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
      this.vacuum.caughtUp();
      return published;
    } finally {
      this.draining--;
    }
  }

  /** Stops claiming; waits for the batch in flight up to `shutdownTimeoutMs`, then releases what is left. */
  async stop(): Promise<void> {
    await this.stopLoop();
    await Promise.all([this.ownership.stop(), this.vacuum.stop(this.options.relay.shutdownTimeoutMs)]);
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
    if (!finished) this.publishing.stopRenewals();
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
   * The loop is pipelined: while a batch is published, the next one is read, and its mark runs
   * while the next batch is published. The batch read ahead may hold later messages of the keys
   * being published: they go out after them since the batches are published one after the other,
   * and a failure meanwhile holds its key's later messages back in it (`heldBack`, when its turn
   * comes). One batch ahead, not two: two measured +9 % on a 100,000-message drain but reorder a
   * key (found by the suite on CI, 2026-12-06): a claim read *after* a failure, once the failed
   * message is due again (its read lifts the key's block), holds the failed message and a later one
   * of its key, while the claim read *before* the failure holds the messages in between and holds
   * them back; the later message goes out before them. With one ahead, every read starts after the
   * claim before it has held back what a failure asks. Two would need the claims read ahead
   * released on any failure.
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
            emitEvent('relay.recovered', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup, failures }));
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
          emitEvent('relay.unavailable', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup, error: error.message, config: error.config, failures, retryInMs: delay }));
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
      if (!more && this.running) {
        this.vacuum.caughtUp();
        await this.doorbell.wait(pollIntervalMs);
      }
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

  /** Connect, publish the claim (ClaimDelivery); the mark is left running (see run()). */
  private async deliver(claim: DeliveryClaim): Promise<number> {
    const leaseConfirmedAt = this.claimedAt.get(claim) ?? performance.now();
    try {
      await this.publisher.connect();
    } catch (error) {
      await this.release(claim, claim.messages);
      this.held.delete(claim);
      throw transportError(error, this.publisher.classify(error));
    }
    const { delivered, release } = await new ClaimDelivery(claim, leaseConfirmedAt, this.parts).run();
    // Published: from here on, shutdown must wait for the mark, never release (a release would
    // un-fence the mark and the batch would be published again).
    this.held.delete(claim);
    // The mark of this batch runs while the next batch is published; at most one mark waits.
    const previous = this.pendingMark;
    const published = delivered.length;
    this.pendingMark = previous.then(() =>
      this.bookkeeping.finish(claim, delivered, release).catch((error: unknown) => {
        if (isBackgroundStopped(error)) return;
        this.logger.error(`Marking a published batch failed; it will be published again after its lease: ${describeError(error)}`);
      }),
    );
    await previous;
    return published;
  }

  private release(claim: DeliveryClaim, rows: MessageRow[]): Promise<void> {
    return this.bookkeeping.release(claim, rows);
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
