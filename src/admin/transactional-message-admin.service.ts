import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { StoreTransactions } from '../context/store-transactions.js';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import { emitEvent, type TransactionalMessageEventMap } from '../events/transactional-message-events.js';
import { MessageStatus } from '../message/message-status.enum.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { TransactionalMessageProducer } from '../producer/transactional-message.producer.js';
import { CommitNotifier } from '../context/commit-notifier.js';
import { AdminStore, type AdminFilter } from '../store/admin.store.js';
import { publicMessage } from '../store/message-row.js';
import type { CheckAttempt, StoredMessage } from '../store/stored-message.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';

/** The statuses of messages that still wait for something (or someone): what operators list. */
export const LIVE_STATUSES = [
  MessageStatus.HALF,
  MessageStatus.COMMITTED,
  MessageStatus.DELAYED,
  MessageStatus.DEAD,
  MessageStatus.CHECK_EXHAUSTED,
  MessageStatus.DISCARDED,
] as const;

/** A live status, as the enum or its string (`MessageStatus.DEAD` or `'DEAD'`). */
export type LiveStatus = `${(typeof LIVE_STATUSES)[number]}`;

/** Who acts (the admin API passes the request's user, where its guard sets one). */
export interface OperatorInfo {
  operator?: string;
}

function operatorName(by: OperatorInfo): string {
  return by.operator ?? '(unknown)';
}

/** Which messages an operator asks about. Every field narrows; none: every live message. */
export interface MessageQuery {
  /** One status or several; default every live status (HALF, COMMITTED, DELAYED, DEAD, CHECK_EXHAUSTED, DISCARDED). */
  status?: LiveStatus | LiveStatus[];
  topic?: string;
  key?: string;
  producerGroup?: string;
  /** Stored at least this long ago, in ms (database clock). */
  olderThanMs?: number;
}

/** One page of `list()`. */
export interface MessagePage {
  /** Oldest first (by write order), without their bodies (`get(id)` has the body). */
  messages: Array<Omit<StoredMessage, 'body' | 'bodyBytes'> & { bodyBytes: number }>;
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/** What `summary()` reports: counts of the live statuses and how far behind the relay is. */
export interface MessageSummary {
  counts: Record<LiveStatus, number>;
  /** Age of the oldest COMMITTED message (waiting to be published), in ms; 0 when none waits. */
  relayLagMs: number;
  /** Age of the oldest HALF message (waiting for its outcome or a check), in ms; 0 when none. */
  oldestHalfAgeMs: number;
}

const MAX_PAGE = 500;

/**
 * Runs `work` for each item one after the other: the queries share one connection, and a driver
 * connection runs one query at a time (node-postgres deprecates queuing them, pg 9 refuses).
 */
async function inSeries<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (const item of items) results.push(await work(item));
  return results;
}
const BATCH = 1_000;
/** The largest olderThanMs filter: 100 years (any message is younger). */
const MAX_OLDER_THAN_MS = 100 * 365 * 24 * 60 * 60 * 1000;

/**
 * The operator's view of the message table: list and count what waits (HALF, COMMITTED, DEAD,
 * parked, discarded) by status, topic, key, producer group and age; look one message up with its
 * check history; end a HALF or parked message; replay DEAD ones; purge. Every list and count runs
 * on an index of the status it reads (never on the delivered history).
 */
export class TransactionalMessageAdmin {
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(
    private readonly options: ResolvedOptions,
    private readonly transactions: StoreTransactions,
    private readonly store: AdminStore,
    private readonly producer: TransactionalMessageProducer,
    private readonly notifier: CommitNotifier,
  ) {}

  /** Messages that `query` selects, oldest first, `limit` (default 50, at most 500) per page. */
  async list(query: MessageQuery = {}, page: { limit?: number; after?: string } = {}): Promise<MessagePage> {
    const statuses = this.statuses(query);
    const filter = this.filter(query);
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new InvalidMessageError('page limit', limit, `a whole number from 1 to ${MAX_PAGE}`);
    const after = page.after === undefined ? 0 : Number(page.after);
    if (!Number.isSafeInteger(after) || after < 0) throw new InvalidMessageError('page cursor', page.after, "the 'next' of the previous page");
    const rows = await this.read('admin.list', async (m) => {
      // One indexed read per status, merged in write order.
      const perStatus = await inSeries(statuses, (status) => this.store.list(m, status as MessageStatus, filter, after, limit + 1));
      return perStatus.flat().sort((a, b) => a.seq - b.seq);
    });
    const pageRows = rows.slice(0, limit);
    return {
      messages: pageRows.map((row) => {
        const { body: _body, bodyBytes, ...rest } = publicMessage(row);
        return { ...rest, bodyBytes: bodyBytes.length };
      }),
      ...(rows.length > limit ? { next: String(pageRows[pageRows.length - 1].seq) } : {}),
    };
  }

  /** How many messages of each live status `query` selects. */
  async count(query: MessageQuery = {}): Promise<Partial<Record<LiveStatus, number>>> {
    const statuses = this.statuses(query);
    const filter = this.filter(query);
    const counts = await this.read('admin.count', (m) => inSeries(statuses, (status) => this.store.count(m, status as MessageStatus, filter)));
    return Object.fromEntries(statuses.map((status, i) => [status, counts[i]]));
  }

  /** Counts of every live status, the relay's lag and the oldest half message's age. */
  async summary(): Promise<MessageSummary> {
    return this.read('admin.summary', async (m) => {
      const counts = await inSeries(LIVE_STATUSES, (status) => this.store.count(m, status, {}));
      const [lag, half] = await inSeries([MessageStatus.COMMITTED, MessageStatus.HALF], (status) => this.store.oldestAgeMs(m, status));
      return {
        counts: Object.fromEntries(LIVE_STATUSES.map((status, i) => [status, counts[i]])) as Record<LiveStatus, number>,
        relayLagMs: lag ?? 0,
        oldestHalfAgeMs: half ?? 0,
      };
    });
  }

  /** One message (any status) with its check history, or null. */
  async get(id: string): Promise<{ message: StoredMessage; checks: CheckAttempt[] } | null> {
    const message = await this.producer.getMessage(id);
    if (!message) return null;
    return { message, checks: await this.producer.getCheckHistory(id) };
  }

  /**
   * Commits a HALF or parked (CHECK_EXHAUSTED) message: it will be delivered. Its business state
   * is not changed: commit only what the business transaction really committed. Recorded in its
   * check history as decided by `by.operator` (and reported as an `operator.action` event).
   */
  async commit(id: string, by: OperatorInfo = {}): Promise<void> {
    await this.producer.commit(id);
    await this.recordDecision(id, 'COMMIT', by);
  }

  /** Rolls back a HALF or parked (CHECK_EXHAUSTED) message: it is never delivered. Recorded as `commit` is. */
  async rollback(id: string, by: OperatorInfo = {}): Promise<void> {
    await this.producer.rollback(id);
    await this.recordDecision(id, 'ROLLBACK', by);
  }

  /** Puts one DEAD message back in the queue; false if it is not DEAD. */
  async replay(id: string, by: OperatorInfo = {}): Promise<boolean> {
    const done = await this.producer.replay(id);
    if (done) this.report('replay', id, 1, by);
    return done;
  }

  /** Gives up on one DEAD message (DISCARDED); false if it is not DEAD. */
  async discard(id: string, by: OperatorInfo = {}): Promise<boolean> {
    const done = await this.producer.discard(id);
    if (done) this.report('discard', id, 1, by);
    return done;
  }

  private async recordDecision(id: string, result: 'COMMIT' | 'ROLLBACK', by: OperatorInfo): Promise<void> {
    this.report(result === 'COMMIT' ? 'commit' : 'rollback', id, 1, by);
    // After the decision, in a statement of its own: the decision stands if recording it fails.
    await this.read('admin.record', (m) => this.store.recordOperatorDecision(m, id, result, operatorName(by))).catch((error: unknown) =>
      this.logger.warn(`Could not record the operator's ${result} of message ${id} in its check history: ${(error as Error)?.message ?? error}`),
    );
  }

  private report(action: TransactionalMessageEventMap['operator.action']['action'], id: string | null, count: number, by: OperatorInfo): void {
    emitEvent('operator.action', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup ?? '', action, id, count, operator: by.operator ?? null }));
  }

  /** Puts every DEAD message `query` selects (topic, key, producer group, age) back in the queue; returns how many. */
  async replayDead(query: Omit<MessageQuery, 'status'> = {}, by: OperatorInfo = {}): Promise<number> {
    const filter = this.filter(query);
    let total = 0;
    for (;;) {
      const replayed = await this.read('admin.replayDead', (m) => this.store.replayDead(m, filter, BATCH));
      total += replayed;
      if (replayed < BATCH) break;
    }
    if (total > 0) this.notifier.committed();
    this.report('replay-dead', null, total, by);
    return total;
  }

  /**
   * Deletes the messages of one status that `query` selects, with their check history; returns how
   * many. For DEAD, DISCARDED and parked messages an operator gave up on (and DELIVERED or
   * ROLLED_BACK ones before their retention). Never HALF or COMMITTED: end or replay those.
   */
  async purge(query: Omit<MessageQuery, 'status'> & { status: MessageStatus }, by: OperatorInfo = {}): Promise<number> {
    const purgeable = [MessageStatus.DEAD, MessageStatus.DISCARDED, MessageStatus.CHECK_EXHAUSTED, MessageStatus.DELIVERED, MessageStatus.ROLLED_BACK];
    if (!purgeable.includes(query?.status)) {
      throw new InvalidMessageError('purge status', query?.status, `one of ${purgeable.join(', ')} (a HALF, COMMITTED or DELAYED message is ended or delivered, not purged)`);
    }
    const filter = this.filter(query);
    let total = 0;
    for (;;) {
      const deleted = await this.read('admin.purge', (m) => this.store.purge(m, query.status, filter, BATCH));
      total += deleted;
      if (deleted < BATCH) break;
    }
    this.report('purge', null, total, by);
    return total;
  }

  private read<T>(label: string, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (!this.options.producer) throw new TransactionalMessageError(`TransactionalMessageAdmin needs the message table: this instance has no producerGroup (consumer-only).`);
    return this.transactions.independent(label, work);
  }

  private statuses(query: MessageQuery): LiveStatus[] {
    if (query === null || typeof query !== 'object') throw new InvalidMessageError('query', query, 'an object such as { status: "DEAD" }');
    const requested: string[] = query.status === undefined ? [...LIVE_STATUSES] : Array.isArray(query.status) ? query.status : [query.status];
    for (const status of requested) {
      if (!(LIVE_STATUSES as readonly string[]).includes(status)) {
        throw new InvalidMessageError(
          'status',
          status,
          `one of ${LIVE_STATUSES.join(', ')} (finished messages, DELIVERED and ROLLED_BACK, are not listed: look one up with get(id))`,
        );
      }
    }
    return [...new Set(requested)] as LiveStatus[];
  }

  private filter(query: Omit<MessageQuery, 'status'>): AdminFilter {
    const filter: AdminFilter = {};
    for (const name of ['topic', 'key', 'producerGroup'] as const) {
      const value = query[name];
      if (value === undefined) continue;
      if (typeof value !== 'string' || value.length === 0 || value.length > 255 || value.includes('\u0000')) {
        throw new InvalidMessageError(name, value, 'a string of 1-255 characters without NUL');
      }
      filter[name] = value;
    }
    if (query.olderThanMs !== undefined) {
      if (!Number.isSafeInteger(query.olderThanMs) || query.olderThanMs < 0 || query.olderThanMs > MAX_OLDER_THAN_MS) {
        throw new InvalidMessageError('olderThanMs', query.olderThanMs, `a whole number of ms from 0 to ${MAX_OLDER_THAN_MS} (100 years)`);
      }
      filter.olderThanMs = query.olderThanMs;
    }
    return filter;
  }
}
