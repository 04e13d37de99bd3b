import { Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { LOGGER_CONTEXT } from '../common/constants.js';
import type { Doorbell } from '../common/doorbell.js';
import { BackgroundWork } from '../context/background-work.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import type { DelayedStore } from '../store/delayed.store.js';
import { PeriodicTask } from './periodic-task.js';

/** DELAYED messages made COMMITTED per statement. */
const PROMOTE_BATCH = 500;
/**
 * Fewest ms between two rounds woken by commits (`wake()`): a storm of commits through the explicit
 * API (which cannot tell whether the message it commits is delayed) costs at most 20 rounds a second.
 */
const MIN_WOKEN_GAP_MS = 50;
/** A due time already past (another relay holds the row, or it became due between the two reads): look again this soon. */
const PAST_DUE_RETRY_MS = 10;
/**
 * The most often the timer looks on its own (it also looks at the earliest due time it knows, and
 * when woken): a relay polling every few ms does not make it poll as often.
 */
const MIN_LOOK_INTERVAL_MS = 1_000;

/**
 * @internal The timer of delayed messages: makes each DELAYED message COMMITTED once it is due (by
 * the database's clock), then rings the relay. It sleeps until the earliest due time it knows, at
 * most a second (or `relay.pollIntervalMs` when longer: a delayed message committed by another
 * instance is learned within that), and is woken when this instance commits a delayed message. A
 * look when nothing is due is one read of an index of the DELAYED rows (empty when none waits). Every relay runs one; whichever
 * comes first makes a message COMMITTED (row locks, skipped), and every relay whose due time came
 * looks for its own buckets' messages at once.
 */
export class DelayedMessageTimer {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly task: PeriodicTask;
  private lastRoundAt = -Infinity;
  private wakeScheduled = false;
  /** When the earliest due time the last round found comes (performance.now()). */
  private dueAt: number | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly runner: BackgroundWork,
    private readonly store: DelayedStore,
    /** The relay's doorbell. */
    private readonly relay: Doorbell,
  ) {
    this.task = new PeriodicTask('Delayed messages', Math.max(options.relay.pollIntervalMs, MIN_LOOK_INTERVAL_MS), () => this.round(), this.logger);
  }

  /** A delayed message may have been committed here: look again now, or MIN_WOKEN_GAP_MS after the last round. */
  wake(): void {
    if (this.wakeScheduled) return;
    const since = performance.now() - this.lastRoundAt;
    if (since >= MIN_WOKEN_GAP_MS) return this.task.wake();
    this.wakeScheduled = true;
    setTimeout(() => {
      this.wakeScheduled = false;
      this.task.wake();
    }, MIN_WOKEN_GAP_MS - since).unref();
  }

  start(): void {
    this.task.start();
  }

  stop(timeoutMs: number): Promise<void> {
    return this.task.stop(timeoutMs);
  }

  /**
   * Makes every DELAYED message that is due now COMMITTED; returns how many, and the ms until the
   * next one is due (null when none waits).
   */
  async promoteDue(): Promise<{ promoted: number; nextDueInMs: number | null }> {
    let promoted = 0;
    for (;;) {
      const n = await this.runner.independent('relay.delayed', (m) => this.store.promoteDue(m, PROMOTE_BATCH));
      promoted += n;
      if (n < PROMOTE_BATCH) break;
    }
    const nextDueInMs = await this.runner.autocommit('relay.delayed', (m) => this.store.nextDueInMs(m));
    if (promoted > 0) this.logger.debug(`${promoted} delayed message(s) due: committed for publishing`);
    return { promoted, nextDueInMs };
  }

  /** One round of the task: returns how long to sleep (at most the poll interval). */
  private async round(): Promise<number | undefined> {
    this.lastRoundAt = performance.now();
    const dueCame = this.dueAt !== undefined && this.lastRoundAt >= this.dueAt;
    this.dueAt = undefined;
    // One read when nothing is due; the promotion (a transaction of its own) only when something is.
    let promoted = 0;
    let nextDueInMs = await this.runner.autocommit('relay.delayed', (m) => this.store.nextDueInMs(m));
    if (nextDueInMs !== null && nextDueInMs <= 0) ({ promoted, nextDueInMs } = await this.promoteDue());
    // The relay that owns the message looks at once, whichever relay made it COMMITTED.
    if (promoted > 0 || dueCame) this.relay.ring();
    if (nextDueInMs === null) return undefined;
    this.dueAt = performance.now() + Math.max(nextDueInMs, 0);
    return Math.max(nextDueInMs, PAST_DUE_RETRY_MS);
  }
}
