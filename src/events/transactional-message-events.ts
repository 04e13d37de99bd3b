import { channel, type Channel } from 'node:diagnostics_channel';
import type { MessageStatus } from '../message/message-status.enum.js';
import type { TransactionStatus } from '../message/transaction-status.enum.js';

/** Which instance reported an event: several applications (or modules) can share a process. */
export interface EventSource {
  /** The registration that reported it (`forRoot({ name })`; `'default'` without a name). */
  readonly instance: string;
  /** The producer group ('' in a consumer-only instance). */
  readonly producerGroup: string;
}

/**
 * Everything the library reports, by event name. Delivered synchronously on
 * `node:diagnostics_channel` channels named `nestjs-transactional-message:<name>`; nothing is
 * built or sent while no one subscribes. Subscribe with {@link onTransactionalMessageEvent}.
 */
export interface TransactionalMessageEventMap {
  /** A message was written in its transaction (the transaction may still roll back). */
  'message.stored': EventSource & { id: string; topic: string; key: string | null; status: MessageStatus.HALF | MessageStatus.COMMITTED | MessageStatus.DELAYED | MessageStatus.ROLLED_BACK; bytes: number };
  /** A half message was ended by the explicit API or an operator (COMMIT or ROLLBACK). */
  'message.ended': EventSource & { id: string; outcome: 'COMMIT' | 'ROLLBACK' };
  /**
   * An operator acted through TransactionalMessageAdmin (the admin API, the dashboard, the CLI):
   * `operator` is who (the request's user where the guard sets one), null when unknown.
   */
  'operator.action': EventSource & {
    action: 'commit' | 'rollback' | 'replay' | 'discard' | 'replay-dead' | 'purge';
    id: string | null;
    count: number;
    operator: string | null;
  };
  /** A check handler answered (or failed, counted as UNKNOWN) and the decision was applied. */
  'check.completed': EventSource & {
    id: string;
    topic: string;
    checkNumber: number;
    result: TransactionStatus;
    error: string | null;
    durationMs: number;
    decision: 'commit' | 'rollback' | 'again' | 'rolled-back-exhausted' | 'parked';
  };
  /** Half messages older than check.maxAgeMs were rolled back or parked without a check. */
  'check.expired': EventSource & { count: number; parked: boolean };
  /** A publish request was acknowledged by the broker. */
  'batch.published': EventSource & { count: number; bytes: number; durationMs: number; perTopic: Record<string, number>; oldestCreatedAt: Date };
  /** A message was refused; `dead` when it will not be retried. */
  'message.failed': EventSource & { id: string; topic: string; attempt: number; error: string; retryInMs: number; dead: boolean; unclassified: boolean };
  /** The downstream could not be reached (or refused the client's configuration); nothing counted. */
  'relay.unavailable': EventSource & { error: string; config: boolean; failures: number; retryInMs: number };
  /** The downstream is reachable again after `failures` failed attempts. */
  'relay.recovered': EventSource & { failures: number };
  /**
   * Messages this relay held were taken over by another relay (`during` a publish or just before
   * one); `during: 'renewal'` counts key buckets whose lease ran out before this relay renewed it.
   */
  'lease.lost': EventSource & { count: number; during: 'before-publish' | 'publish' | 'renewal' };
  /** A record's effect was applied through the inbox (`duplicate`: it had been already, skipped). */
  'inbox.processed': EventSource & { consumer: string; messageId: string; duplicate: boolean };
}

export type TransactionalMessageEventName = keyof TransactionalMessageEventMap;

/** The channel name of an event on `node:diagnostics_channel`. */
export function transactionalMessageChannelName(name: TransactionalMessageEventName): string {
  return `nestjs-transactional-message:${name}`;
}

const channels = new Map<string, Channel>();

function channelOf(name: TransactionalMessageEventName): Channel {
  let found = channels.get(name);
  if (!found) channels.set(name, (found = channel(transactionalMessageChannelName(name))));
  return found;
}

/**
 * @internal Reports an event. `payload` is a function so that nothing is built while no one
 * listens (the relay's hot path reports every batch).
 */
export function emitEvent<N extends TransactionalMessageEventName>(name: N, payload: () => TransactionalMessageEventMap[N]): void {
  const target = channelOf(name);
  if (target.hasSubscribers) target.publish(payload());
}

/**
 * Subscribes to one of the library's events; returns the function that unsubscribes. The
 * handler runs synchronously where the event happens: keep it short and never throw (an error is
 * reported by Node as an uncaught exception on the next tick).
 *
 * ```ts
 * const off = onTransactionalMessageEvent('message.failed', (e) => logger.warn(`${e.id}: ${e.error}`));
 * ```
 */
export function onTransactionalMessageEvent<N extends TransactionalMessageEventName>(
  name: N,
  handler: (event: TransactionalMessageEventMap[N]) => void,
): () => void {
  const target = channelOf(name);
  const listener = (message: unknown) => handler(message as TransactionalMessageEventMap[N]);
  target.subscribe(listener);
  return () => void target.unsubscribe(listener);
}
