import { Logger } from '@nestjs/common';
import { transactionStorage } from './transaction-context.storage.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { MessageStore } from '../store/message.store.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { Doorbell } from '../common/doorbell.js';

/** At most one NOTIFY per this many ms from one instance. */
const NOTIFY_INTERVAL_MS = 10;

/**
 * @internal Tells relays that a message was committed.
 *
 * This process's relay is woken through the doorbell. Other processes' relays are woken with
 * PostgreSQL NOTIFY only from instances that run no relay of their own (writer-only instances):
 * a NOTIFY is a commit of its own that takes a database-wide lock, so one per business commit
 * would cost about as much as the business commit. It is sent after the commit, on a pooled
 * connection, at most one per 10 ms. A relay that misses it finds the message at its next poll.
 */
export class CommitNotifier {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly notifyOthers: boolean;
  private scheduled = false;
  private lastSent = 0;
  private closed = false;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly store: MessageStore,
    private readonly doorbell: Doorbell,
    /** The timer of delayed messages (DelayedMessageTimer). */
    private readonly delayedTimer: { wake(): void },
  ) {
    this.notifyOthers = store.notifyChannel !== null && !options.relay.enabled;
  }

  /** After this, nothing is sent (the module stopped). */
  close(): void {
    this.closed = true;
  }

  /**
   * A commit of a message that may be delayed (the explicit API, a check or an operator cannot tell
   * without reading it): the timer of delayed messages looks, and the relay too.
   */
  committedMaybeDelayed(): void {
    this.delayedTimer.wake();
    this.committed();
  }

  /**
   * A delayed message was committed: the timer of delayed messages learns its due time now. (Other
   * instances' timers learn it within their poll interval: nothing is sent to them.)
   */
  committedDelayed(): void {
    this.delayedTimer.wake();
  }

  committed(): void {
    this.doorbell.ring();
    if (!this.notifyOthers || this.scheduled || this.closed) return;
    this.scheduled = true;
    const wait = Math.max(0, this.lastSent + NOTIFY_INTERVAL_MS - performance.now());
    setTimeout(() => {
      this.scheduled = false;
      this.lastSent = performance.now();
      void this.send();
    }, wait).unref();
  }

  private async send(): Promise<void> {
    const { dataSource } = this.options;
    if (!dataSource.isInitialized || this.closed) return;
    try {
      await transactionStorage.exit(() => dataSource.query(`SELECT pg_notify($1, '')`, [this.store.notifyChannel]));
    } catch (error) {
      this.logger.debug(`NOTIFY failed (other relays will poll): ${(error as Error)?.message ?? error}`);
    }
  }
}
