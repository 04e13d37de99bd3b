import { emitEvent } from '../events/transactional-message-events.js';
import type { EntityManager } from 'typeorm';
import { retryDeadlocks } from '../context/store-transactions.js';
import { TransactionRunner } from '../context/transaction-runner.service.js';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { InboxStore } from './inbox.store.js';

/** What `TransactionalInbox.process` did. */
export type InboxResult<T> = { duplicate: false; result: T } | { duplicate: true };

const CONSUMER_PATTERN = /^.{1,255}$/s;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The consumer-side inbox: runs a message's effect at most once per consumer, in the same
 * database transaction that records the message id. A redelivered message (the relay publishes
 * at least once; Kafka consumers can see a record again after a rebalance) finds its id recorded
 * and is skipped. If the effect throws, its transaction rolls back together with the record, so a
 * retry runs it again: the effect happens exactly once.
 */
export class TransactionalInbox {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly runner: TransactionRunner,
    private readonly store: InboxStore,
  ) {}

  /**
   * Runs `work` once for (`consumer`, `messageId`): inside a transaction (the caller's, if any,
   * else a new one) that also records the pair. `work` gets the transaction's EntityManager;
   * `@TransactionalMessage` methods it calls join the same transaction.
   */
  async process<T>(consumer: string, messageId: string, work: (manager: EntityManager) => Promise<T>): Promise<InboxResult<T>> {
    if (!this.options.inbox.enabled) {
      throw new TransactionalMessageError('The inbox is not enabled: set inbox: { enabled: true } in TransactionalMessageModule options and run transactionalMessageInboxMigrations().');
    }
    if (typeof consumer !== 'string' || !CONSUMER_PATTERN.test(consumer)) {
      throw new InvalidMessageError('inbox consumer', consumer, 'a name of 1-255 characters');
    }
    if (typeof messageId !== 'string' || messageId.length === 0 || messageId.length > 64) {
      throw new InvalidMessageError('inbox message id', messageId, 'the tm-message-id header of the record (1-64 characters)');
    }
    // Message ids are UUIDs, which compare case-insensitively: one id in upper and lower case is
    // one message (a transport or a tool may change its case).
    const id = UUID_PATTERN.test(messageId) ? messageId.toLowerCase() : messageId;
    const attempt = () =>
      this.runner.run(`inbox ${consumer}`, {}, undefined, async (scope): Promise<InboxResult<T>> => {
        if (!(await this.store.record(scope.manager, consumer, id))) {
          emitEvent('inbox.processed', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup ?? '', consumer, messageId: id, duplicate: true }));
          return { duplicate: true };
        }
        const result = await work(scope.manager);
        emitEvent('inbox.processed', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup ?? '', consumer, messageId: id, duplicate: false }));
        return { duplicate: false, result };
      });
    // Concurrent deliveries of one id wait on each other's record; when the first rolls back (its
    // effect threw), MariaDB/MySQL may abort a waiter as a deadlock victim. Its transaction is
    // rolled back whole, so, in a transaction of its own, it is simply run again.
    return this.runner.joinsCallerTransaction() ? attempt() : retryDeadlocks(attempt);
  }
}
