import { Logger } from '@nestjs/common';
import type { Attributes, BatchObservableCallback, Meter } from '@opentelemetry/api';
import { TransactionalMessageAdmin, type MessageSummary } from '../admin/transactional-message-admin.service.js';
import {
  onTransactionalMessageEvent,
  type TransactionalMessageEventMap,
  type TransactionalMessageEventName,
} from '../events/transactional-message-events.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';

/** The meter's name (the instrumentation scope). */
export const METER_NAME = 'nestjs-transactional-message';

/** The gauges read the table at most this often, whatever the collection interval. */
const SUMMARY_CACHE_MS = 1_000;

/**
 * @internal OpenTelemetry metrics, from the library's events and a cheap summary of the table.
 * `@opentelemetry/api` is an optional peer: without it, or without a MeterProvider registered
 * (before the application is created), nothing is recorded and nothing costs anything.
 */
export class TransactionalMessageMetrics {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly unsubscribe: Array<() => void> = [];
  private summary: { at: number; value: Promise<MessageSummary> } | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly admin: TransactionalMessageAdmin,
  ) {}

  async start(): Promise<void> {
    if (!this.options.metrics) return;
    let api: typeof import('@opentelemetry/api');
    try {
      api = await import('@opentelemetry/api');
    } catch {
      this.logger.debug('Metrics off: @opentelemetry/api is not installed');
      return;
    }
    const meter = api.metrics.getMeter(METER_NAME);
    if (meter === api.createNoopMeter()) {
      // No MeterProvider registered (yet): subscribing would build every event for nothing.
      this.logger.debug('Metrics off: no OpenTelemetry MeterProvider is registered');
      return;
    }
    this.instrument(meter);
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private instrument(meter: Meter): void {
    const instance = this.options.name;
    const base: Attributes = { 'producer.group': this.options.producerGroup, 'instance.name': instance };
    const group = this.options.producerGroup ?? '';
    // Several registrations (and applications) share the process's channels: count only this one's events.
    const ours = (event: { instance: string; producerGroup: string }) => event.instance === instance && event.producerGroup === group;
    const on = <N extends TransactionalMessageEventName>(name: N, handler: (event: TransactionalMessageEventMap[N]) => void) =>
      this.unsubscribe.push(onTransactionalMessageEvent(name, (event) => ours(event) && handler(event)));

    const stored = meter.createCounter('transactional_message.messages.stored', { description: 'Messages written, by topic and first status' });
    on('message.stored', (e) => stored.add(1, { ...base, topic: e.topic, status: e.status }));
    const ended = meter.createCounter('transactional_message.messages.ended', { description: 'Half messages ended by the explicit API or an operator' });
    on('message.ended', (e) => ended.add(1, { ...base, outcome: e.outcome }));
    const published = meter.createCounter('transactional_message.messages.published', { description: 'Messages published and acknowledged, by topic' });
    const publishDuration = meter.createHistogram('transactional_message.publish.duration', { unit: 'ms', description: 'Time of one publish request' });
    const batchSize = meter.createHistogram('transactional_message.publish.batch_size', { description: 'Messages per publish request' });
    on('batch.published', (e) => {
      for (const [topic, count] of Object.entries(e.perTopic)) published.add(count, { ...base, topic });
      publishDuration.record(e.durationMs, base);
      batchSize.record(e.count, base);
    });
    const failed = meter.createCounter('transactional_message.messages.failed', { description: 'Publish attempts refused, by topic; dead: no more retries' });
    on('message.failed', (e) => failed.add(1, { ...base, topic: e.topic, dead: e.dead, unclassified: e.unclassified }));
    const unavailable = meter.createCounter('transactional_message.relay.unavailable', { description: 'Relay cycles that found the downstream unavailable (or misconfigured)' });
    on('relay.unavailable', (e) => unavailable.add(1, { ...base, config: e.config }));
    const leases = meter.createCounter('transactional_message.leases.lost', { description: 'Messages another relay took over from this one' });
    on('lease.lost', (e) => leases.add(e.count, { ...base, during: e.during }));
    const checks = meter.createCounter('transactional_message.checks', { description: 'Transaction checks, by topic, answer and decision' });
    on('check.completed', (e) => checks.add(1, { ...base, topic: e.topic, result: e.result, decision: e.decision }));
    const expired = meter.createCounter('transactional_message.checks.expired', { description: 'Half messages ended by check.maxAgeMs without a check' });
    on('check.expired', (e) => expired.add(e.count, { ...base, parked: e.parked }));
    const inbox = meter.createCounter('transactional_message.inbox.processed', { description: 'Records handled through the inbox; duplicate: skipped' });
    on('inbox.processed', (e) => inbox.add(1, { 'instance.name': instance, consumer: e.consumer, duplicate: e.duplicate }));

    if (!this.options.producer) return;
    const waiting = meter.createObservableGauge('transactional_message.messages.waiting', { description: 'Messages by live status (HALF, COMMITTED, DELAYED, DEAD, CHECK_EXHAUSTED, DISCARDED)' });
    const lag = meter.createObservableGauge('transactional_message.relay.lag', { unit: 'ms', description: 'Age of the oldest message waiting to be published' });
    const halfAge = meter.createObservableGauge('transactional_message.half.oldest_age', { unit: 'ms', description: 'Age of the oldest half message' });
    const observe: BatchObservableCallback = async (result) => {
      const summary = await this.cachedSummary().catch(() => undefined);
      if (!summary) return;
      for (const [status, count] of Object.entries(summary.counts)) result.observe(waiting, count, { ...base, status });
      result.observe(lag, summary.relayLagMs, base);
      result.observe(halfAge, summary.oldestHalfAgeMs, base);
    };
    meter.addBatchObservableCallback(observe, [waiting, lag, halfAge]);
    // Once the module stops, a scrape must not query its database.
    this.unsubscribe.push(() => meter.removeBatchObservableCallback(observe, [waiting, lag, halfAge]));
  }

  /** The table's summary, read at most once a second (several scrapers, several gauges). */
  private cachedSummary(): Promise<MessageSummary> {
    const now = performance.now();
    if (!this.summary || now - this.summary.at > SUMMARY_CACHE_MS) this.summary = { at: now, value: this.admin.summary() };
    return this.summary.value;
  }
}
