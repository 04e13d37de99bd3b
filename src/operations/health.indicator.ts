import { TransactionalMessageAdmin } from '../admin/transactional-message-admin.service.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { DeliveryRelay } from '../relay/delivery-relay.service.js';

/** What counts as unhealthy; checks whose threshold is left out are not made. */
export interface HealthThresholds {
  /** The oldest message waiting to be published is older than this, in ms. Default `300000` (5 minutes). */
  maxLagMs?: number;
  /** More DEAD messages than this. Default: not checked (a DEAD message needs an operator, not a restart). */
  maxDead?: number;
  /** More parked (CHECK_EXHAUSTED) messages than this. Default: not checked. */
  maxParked?: number;
}

/** One key's result, in `@nestjs/terminus`'s shape: `{ [key]: { status, ...details } }`. */
export type TransactionalMessageHealth = Record<
  string,
  {
    status: 'up' | 'down';
    /** Why it is down, in words. */
    problems: string[];
    relay: 'running' | 'stuck' | 'off';
    downstream: 'available' | 'unavailable';
    unavailableSince: string | null;
    relayLagMs: number;
    dead: number;
    parked: number;
    half: number;
  }
>;

/**
 * The module's health, for `@nestjs/terminus` (which it does not import: the result has
 * terminus's shape, so it works with terminus 11 and 12 and needs nothing when unused):
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.messages.isHealthy('messages', { maxLagMs: 60_000 })]); }
 * ```
 *
 * Down when the relay loop is stuck (no new cycle for longer than the larger of `relay.leaseMs`
 * and 30 s, plus `relay.pollIntervalMs`), the downstream is unavailable, or a threshold is passed. Use it for
 * readiness and alerts: restarting an instance fixes neither a broker outage nor a DEAD message.
 */
export class TransactionalMessageHealthIndicator {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly relay: DeliveryRelay,
    private readonly admin: TransactionalMessageAdmin,
  ) {}

  async isHealthy(key = 'transactional-message', thresholds: HealthThresholds = {}): Promise<TransactionalMessageHealth> {
    const maxLagMs = thresholds.maxLagMs ?? 300_000;
    const relayHealth = this.relay.health();
    const summary = this.options.producer ? await this.admin.summary() : undefined;
    const problems: string[] = [];
    const stuckAfterMs = Math.max(this.options.relay.leaseMs, 30_000) + this.options.relay.pollIntervalMs;
    const relay = !relayHealth.running ? 'off' : relayHealth.sinceLastCycleMs > stuckAfterMs ? 'stuck' : 'running';
    if (relay === 'stuck') problems.push(`the relay has begun no cycle for ${Math.round(relayHealth.sinceLastCycleMs)} ms`);
    if (relayHealth.unavailableSince) {
      problems.push(`the downstream has been unavailable since ${relayHealth.unavailableSince.toISOString()} (${relayHealth.failures} failed attempts)`);
    }
    const counts = summary?.counts;
    const lag = summary?.relayLagMs ?? 0;
    if (lag > maxLagMs) problems.push(`the oldest message waiting to be published is ${lag} ms old (maxLagMs ${maxLagMs})`);
    if (thresholds.maxDead !== undefined && (counts?.DEAD ?? 0) > thresholds.maxDead) problems.push(`${counts?.DEAD} DEAD message(s) (maxDead ${thresholds.maxDead})`);
    if (thresholds.maxParked !== undefined && (counts?.CHECK_EXHAUSTED ?? 0) > thresholds.maxParked) {
      problems.push(`${counts?.CHECK_EXHAUSTED} parked message(s) (maxParked ${thresholds.maxParked})`);
    }
    return {
      [key]: {
        status: problems.length === 0 ? 'up' : 'down',
        problems,
        relay,
        downstream: relayHealth.unavailableSince ? 'unavailable' : 'available',
        unavailableSince: relayHealth.unavailableSince?.toISOString() ?? null,
        relayLagMs: lag,
        dead: counts?.DEAD ?? 0,
        parked: counts?.CHECK_EXHAUSTED ?? 0,
        half: counts?.HALF ?? 0,
      },
    };
  }
}
