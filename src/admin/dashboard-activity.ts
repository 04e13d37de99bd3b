import { Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { describeError } from '../errors/describe-error.js';
import { onTransactionalMessageEvent } from '../events/transactional-message-events.js';
import type { TransactionalMessageAdmin } from './transactional-message-admin.service.js';

/** One slice of the activity: what happened in it, and the gauges sampled at its end. */
export interface ActivityBucket {
  /** When the slice began (ISO). */
  at: string;
  /** Messages published, per topic. */
  published: Record<string, number>;
  /** Failed publishing attempts (retried or not), and of those, messages that went DEAD. */
  failed: number;
  dead: number;
  /** The relay's lag (age of the oldest COMMITTED message) and the HALF messages waiting, when sampled. */
  relayLagMs: number | null;
  halfWaiting: number | null;
}

/** What `GET api/activity` answers: the last hour, oldest first. */
export interface Activity {
  bucketMs: number;
  buckets: ActivityBucket[];
}

/** Slices of 10 s, the last hour. */
export const ACTIVITY_BUCKET_MS = 10_000;
const KEPT = 360;

/**
 * @internal The dashboard's charts over time: the published messages per topic and the failures
 * of one registration, from the library's events (as they happen), and its relay lag and HALF
 * messages waiting, sampled every 10 s while the application runs. Kept in memory for the last
 * hour (each application instance shows its own relay's publishing).
 */
export class DashboardActivity implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly buckets: ActivityBucket[] = [];
  private readonly unsubscribe: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;

  constructor(
    private readonly instance: string,
    private readonly admin: TransactionalMessageAdmin,
  ) {}

  onModuleInit(): void {
    this.unsubscribe.push(
      onTransactionalMessageEvent('batch.published', (event) => {
        if (event.instance !== this.instance) return;
        const published = this.current().published;
        for (const [topic, count] of Object.entries(event.perTopic)) published[topic] = (published[topic] ?? 0) + count;
      }),
      onTransactionalMessageEvent('message.failed', (event) => {
        if (event.instance !== this.instance) return;
        const bucket = this.current();
        bucket.failed++;
        if (event.dead) bucket.dead++;
      }),
    );
    this.timer = setInterval(() => void this.sample(), ACTIVITY_BUCKET_MS);
    this.timer.unref();
    void this.sample();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** The last hour, oldest first. */
  activity(): Activity {
    this.current();
    return { bucketMs: ACTIVITY_BUCKET_MS, buckets: this.buckets.map((b) => ({ ...b, published: { ...b.published } })) };
  }

  /** Samples the gauges into the current slice; a failure (the database away) leaves them unknown. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const summary = await this.admin.summary();
      const bucket = this.current();
      bucket.relayLagMs = summary.relayLagMs;
      bucket.halfWaiting = summary.counts.HALF;
    } catch (error) {
      this.logger.debug(`Dashboard activity: sampling the relay lag failed: ${describeError(error)}`);
    } finally {
      this.sampling = false;
    }
  }

  /** The slice of now, opening new ones (empty) for the time since the last. */
  private current(): ActivityBucket {
    const start = Math.floor(Date.now() / ACTIVITY_BUCKET_MS) * ACTIVITY_BUCKET_MS;
    let last = this.buckets.at(-1);
    const lastStart = last ? Date.parse(last.at) : start - ACTIVITY_BUCKET_MS;
    for (let at = Math.max(lastStart + ACTIVITY_BUCKET_MS, start - (KEPT - 1) * ACTIVITY_BUCKET_MS); at <= start; at += ACTIVITY_BUCKET_MS) {
      this.buckets.push((last = { at: new Date(at).toISOString(), published: {}, failed: 0, dead: 0, relayLagMs: null, halfWaiting: null }));
    }
    if (this.buckets.length > KEPT) this.buckets.splice(0, this.buckets.length - KEPT);
    return last!;
  }
}
