import { Logger } from '@nestjs/common';
import { emitEvent } from '../events/transactional-message-events.js';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { BackgroundWork, isBackgroundStopped } from '../context/background-work.js';
import { TransactionStatus } from '../message/transaction-status.enum.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { CommitNotifier } from '../context/commit-notifier.js';
import { Doorbell } from '../common/doorbell.js';
import { CheckStore } from '../store/check.store.js';
import { poolSize } from '../store/dialects/pool-size.js';
import type { MessageRow } from '../store/message-row.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { decideCheck } from './check-decision.js';
import { CheckHandlerRegistry } from './check-handler.registry.js';
import type { HalfMessage } from './half-message.interface.js';

const STATUSES: ReadonlySet<unknown> = new Set(Object.values(TransactionStatus));

/** The half messages of one claimed check round that no worker has taken yet. */
interface CheckRound {
  readonly token: string;
  readonly waiting: MessageRow[];
}

/**
 * @internal RocketMQ's transaction check: asks the check handlers about half messages that are
 * due, applies their answers, and ends messages whose checks ran out. Handlers run concurrently
 * (up to `check.concurrency`), each bounded by `check.handlerTimeoutMs`, so a slow or hung handler
 * holds back nothing but its own message.
 *
 * A check counts only when a handler was asked: on shutdown the messages of the round that no
 * handler has been called for yet are released (due again at once, for any instance), and an
 * answer that failed while the checker was stopping (the application closing the handler's
 * resources) is not counted either, so shutdown never spends a message's check budget.
 */
export class CheckScheduler {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly wake = new Doorbell();
  private running = false;
  /** runChecksNow() calls in progress. */
  private checking = 0;
  private loop: Promise<void> | undefined;
  private round: CheckRound | undefined;
  /**
   * Handler calls that have not settled, by message id: a call abandoned at handlerTimeoutMs stays
   * here until it really returns or throws. They are what `check.concurrency` bounds, and no new
   * call starts for a message whose previous call is still here.
   */
  private readonly calls = new Map<string, Promise<unknown>>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly identity: string,
    private readonly runner: BackgroundWork,
    private readonly store: CheckStore,
    private readonly handlers: CheckHandlerRegistry,
    private readonly notifier: CommitNotifier,
  ) {}

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.warnAboutPoolSize();
    await this.warnAboutMissingHandlers();
    this.loop = this.run();
  }

  private get active(): boolean {
    return this.running || this.checking > 0;
  }

  /**
   * Checks every half message whose check is due now (one check each), and resolves with how
   * many were checked. For tests and scripts, typically with `relay.autoStart: false` and a short
   * `checkImmunityMs`; call it again for the next check (after `check.intervalMs`).
   */
  async runChecksNow(): Promise<number> {
    this.checking++;
    try {
      const checked = new Set<string>();
      for (;;) {
        const round = await this.cycle();
        const fresh = round.checked.filter((id) => !checked.has(id));
        for (const id of fresh) checked.add(id);
        // Stop once nothing new comes: a message answered UNKNOWN is due again after check.intervalMs.
        if (!round.more || fresh.length === 0) return checked.size;
      }
    } finally {
      this.checking--;
    }
  }

  /**
   * Stops claiming, gives back the messages of the round that no handler was called for, and waits
   * up to `shutdownTimeoutMs` for the handlers already running (their messages keep their lease
   * until it expires if they do not answer in time, so no other instance checks them meanwhile).
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake.ring();
    await this.releaseWaiting();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise((resolve) => (timer = setTimeout(resolve, this.options.relay.shutdownTimeoutMs)))]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    const { pollIntervalMs } = this.options.relay;
    while (this.running) {
      let more = false;
      try {
        more = (await this.cycle()).more;
      } catch (error) {
        if (!this.running || isBackgroundStopped(error)) break;
        this.logger.error(`Check cycle failed: ${(error as Error)?.stack ?? error}`);
      }
      if (!more && this.running) await this.wake.wait(pollIntervalMs);
    }
  }

  /** Releases the claimed messages that no worker took: not checked, so not counted. */
  private async releaseWaiting(): Promise<void> {
    const round = this.round;
    const rows = round?.waiting.splice(0) ?? [];
    if (!round || rows.length === 0) return;
    await this.runner
      .autocommit('check.release', (m) => this.store.release(m, rows, round.token))
      .catch((error: unknown) => this.logger.debug(`Could not release ${rows.length} unchecked message(s); their lease expires: ${(error as Error)?.message ?? error}`));
  }

  /** One check round: expire, claim, check. `more`: the round was full, more may be due. */
  private async cycle(): Promise<{ more: boolean; checked: string[] }> {
    const { producerGroup, check, relay } = this.options;
    const expired = await this.runner.independent('check.expire', (m) =>
      this.store.expire(m, producerGroup, check.maxAgeMs, check.onExhausted === 'park', check.batchSize),
    );
    if (expired > 0) {
      emitEvent('check.expired', () => ({ instance: this.options.name, producerGroup, count: expired, parked: check.onExhausted === 'park' }));
      this.logger.warn(
        `${expired} half message(s) reached check.maxAgeMs without a decision: ${check.onExhausted === 'park' ? 'parked (CHECK_EXHAUSTED)' : 'rolled back'}`,
      );
    }
    if (this.handlers.isEmpty || !this.active) return { more: expired >= check.batchSize, checked: [] };
    // Only as many as there are free handler slots: hung calls (abandoned, not returned) hold theirs.
    const free = check.concurrency - this.calls.size;
    if (free <= 0) {
      this.logger.debug(`No check started: ${this.calls.size} handler call(s) have not returned (check.concurrency ${check.concurrency})`);
      return { more: false, checked: [] };
    }
    const limit = Math.min(check.batchSize, free);
    const token = randomUUID();
    // A check must be decided before its lease runs out: the handler timeout bounds it.
    const leaseMs = Math.max(relay.leaseMs, check.handlerTimeoutMs * 2);
    const due = await this.runner.independent('check.claim', (m) =>
      this.store.claim(m, producerGroup, this.handlers.topics(), this.identity, token, limit, leaseMs),
    );
    const round: CheckRound = { token, waiting: [...due] };
    this.round = round;
    // Stopped while claiming: give the whole claim back.
    if (!this.active) await this.releaseWaiting();
    const worker = async () => {
      for (let row = round.waiting.shift(); row; row = round.waiting.shift()) {
        if (this.calls.size >= check.concurrency && !this.calls.has(row.id)) {
          // Every slot is held by a call that timed out and has not returned: what is left of the
          // round is given back, not counted (checked once a call returns, here or elsewhere).
          round.waiting.unshift(row);
          await this.releaseWaiting();
          return;
        }
        await this.checkOne(row, token, leaseMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(free, due.length) }, worker));
    if (this.round === round) this.round = undefined;
    return { more: due.length >= limit || expired >= check.batchSize, checked: due.map((row) => row.id) };
  }

  private async checkOne(row: MessageRow, token: string, leaseMs: number): Promise<void> {
    const { check } = this.options;
    const checkNumber = row.checkCount + 1;
    const handler = this.handlers.find(row.topic);
    if (!handler) {
      // Claims only take topics with a handler here; a check that asks no one must not count.
      await this.runner.autocommit('check.release', (m) => this.store.release(m, [row], token)).catch(() => undefined);
      return;
    }
    // Right before every call, re-confirm in the database that the message is still HALF and still
    // this checker's: a commit(), rollback() or another instance may have decided it since the
    // claim (commit() does not wait for a check lease), and a decided message is never asked about.
    const held = await this.confirmLease(row, token, leaseMs);
    if (held === 'lost') {
      this.logger.debug(`Check of message ${row.id} skipped: it was decided meanwhile or another instance took it over`);
      return;
    }
    if (held === 'stalled') {
      this.logger.debug(`Check of message ${row.id} given back: this process was too slow to keep its lease`);
      await this.runner.autocommit('check.release', (m) => this.store.release(m, [row], token)).catch(() => undefined);
      return;
    }
    const started = performance.now();
    let answer = TransactionStatus.UNKNOWN;
    let error: string | null = null;
    const previous = this.calls.get(row.id);
    const outcome: CallOutcome = previous ? { kind: 'still-running' } : await this.call(row.id, () => handler.invoke(toHalfMessage(row, checkNumber)));
    if (outcome.kind === 'still-running') error = `${handler.label} has not returned from the previous check of this message; not called again`;
    else if (outcome.kind === 'timeout') error = `${handler.label} did not answer within ${check.handlerTimeoutMs} ms`;
    else if (outcome.kind === 'error') error = `${handler.label} threw: ${outcome.error}`;
    else if (!STATUSES.has(outcome.value)) error = `${handler.label} returned ${String(outcome.value)}, not a TransactionStatus`;
    else answer = outcome.value as TransactionStatus;
    if (error && !this.active) {
      // Failed while the application was shutting down: likely its resources closing, not the
      // transaction's state. Not counted; the message is checked again (here or elsewhere).
      this.logger.debug(`Check ${checkNumber} of message ${row.id} failed during shutdown, not counted: ${error}`);
      await this.runner.autocommit('check.release', (m) => this.store.release(m, [row], token)).catch(() => undefined);
      return;
    }
    const durationMs = Math.round(performance.now() - started);
    const decision = decideCheck(answer, checkNumber, check);
    const applied = await this.runner
      .independent('check.decide', (m) =>
        this.store.decide(m, row, token, decision, { checkNumber, result: answer, error, durationMs, checker: this.identity }),
      )
      .catch((e: unknown) => {
        if (!isBackgroundStopped(e)) this.logger.error(`Could not record check ${checkNumber} of message ${row.id}: ${(e as Error)?.message ?? e}`);
        return false;
      });
    if (applied && decision.kind === 'commit') this.notifier.committedMaybeDelayed();
    if (applied) {
      emitEvent('check.completed', () => ({
        instance: this.options.name,
        producerGroup: row.producerGroup,
        id: row.id,
        topic: row.topic,
        checkNumber,
        result: answer,
        error,
        durationMs,
        decision: decision.kind === 'exhausted' ? (decision.park ? 'parked' : 'rolled-back-exhausted') : decision.kind,
      }));
    }
    if (!applied) {
      this.logger.debug(`Check ${checkNumber} of message ${row.id} not applied: it was decided meanwhile or its lease was lost`);
    } else if (error) {
      this.logger.warn(`Check ${checkNumber} of message ${row.id} (topic ${row.topic}) counts as UNKNOWN: ${error}`);
    }
    if (applied && decision.kind === 'exhausted') {
      this.logger.warn(`Message ${row.id} (topic ${row.topic}): ${decision.reason}; ${decision.park ? 'parked (CHECK_EXHAUSTED)' : 'rolled back'}`);
    }
  }

  /**
   * Extends the check lease of `row` and tells whether the handler may be called now: only while
   * the confirmation is fresh by this process's clock (sent less than half a lease ago), since the
   * call follows it at once and no other instance can take the message before the lease runs out.
   * A process that stalled after the database confirmed (CPU starvation, a long GC) could find the
   * lease run out and the message decided by another instance meanwhile: it confirms again
   * ('stalled' after three slow confirmations in a row).
   */
  private async confirmLease(row: MessageRow, token: string, leaseMs: number): Promise<'held' | 'lost' | 'stalled'> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const sentAt = performance.now();
      const still = await this.runner.autocommit('check.renew', (m) => this.store.renew(m, row, token, leaseMs)).catch(() => false);
      if (!still) return 'lost';
      if (performance.now() - sentAt < leaseMs / 2) return 'held';
    }
    return 'stalled';
  }

  /**
   * Calls a handler, bounded by handlerTimeoutMs; the call stays counted (`calls`) until it really
   * settles, and its settling wakes the loop (a slot is free again).
   */
  private call(id: string, invoke: () => unknown): Promise<CallOutcome> {
    const { answer, outcome } = callWithTimeout(invoke, this.options.check.handlerTimeoutMs);
    this.calls.set(id, answer);
    void answer.then(() => {
      this.calls.delete(id);
      this.wake.ring();
    });
    return outcome;
  }

  /** Check handlers often read the database: warn when they and the relay can take the whole pool. */
  private warnAboutPoolSize(): void {
    if (this.handlers.isEmpty) return;
    const size = poolSize(this.options.dataSource);
    const { concurrency } = this.options.check;
    const { maxConnections } = this.options.relay;
    if (size === undefined || concurrency + maxConnections < size) return;
    this.logger.warn(
      `Up to ${concurrency} check handler call(s) run at once (check.concurrency) beside up to ${maxConnections} connection(s) of the relay ` +
        `(relay.maxConnections), and the DataSource's pool has ${size}: handlers that each hold a connection (or hang holding one) ` +
        `can leave business requests without any. Lower check.concurrency or give the pool more connections.`,
    );
  }

  private async warnAboutMissingHandlers(): Promise<void> {
    const topics = await this.runner
      .independent('check.topics', (m) => this.store.halfTopics(m, this.options.producerGroup))
      .catch(() => [] as string[]);
    const missing = topics.filter((topic) => !this.handlers.find(topic));
    if (missing.length > 0) {
      this.logger.warn(
        `Half messages of producer group '${this.options.producerGroup}' wait for a check on topic(s) ${missing.join(', ')}, ` +
          `but this instance has no @TransactionCheckHandler for them; they will be ${this.options.check.onExhausted === 'park' ? 'parked' : 'rolled back'} ` +
          `after check.maxAgeMs unless an instance with a handler checks them.`,
      );
    }
  }
}

function toHalfMessage(row: MessageRow, checkCount: number): HalfMessage {
  return {
    id: row.id,
    producerGroup: row.producerGroup,
    topic: row.topic,
    key: row.key,
    tags: row.tags,
    properties: row.properties,
    body: row.body,
    bornAt: row.createdAt,
    checkCount,
  };
}

type CallOutcome =
  | { kind: 'value'; value: unknown }
  | { kind: 'error'; error: string }
  | { kind: 'timeout' }
  | { kind: 'still-running' };

/**
 * `outcome`: the call's answer, or `timeout` after `timeoutMs`; `answer`: settles (never rejects)
 * when the call really returns or throws, however long after the timeout.
 */
function callWithTimeout(call: () => unknown, timeoutMs: number): { answer: Promise<CallOutcome>; outcome: Promise<CallOutcome> } {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CallOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs);
  });
  const answer = (async (): Promise<CallOutcome> => {
    try {
      return { kind: 'value', value: await call() };
    } catch (error) {
      return { kind: 'error', error: (error as Error)?.message ?? String(error) };
    }
  })();
  return { answer, outcome: Promise.race([answer, timeout]).finally(() => clearTimeout(timer)) };
}
