import { Logger } from '@nestjs/common';
import { emitEvent } from '../events/transactional-message-events.js';
import type { EntityManager } from 'typeorm';
import { StoreTransactions } from '../context/store-transactions.js';
import { TransactionRunner } from '../context/transaction-runner.service.js';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { MessageNotFoundError } from '../errors/message-not-found.error.js';
import { encodeMessage } from '../message/encode-message.js';
import { MessageStatus } from '../message/message-status.enum.js';
import type { MessageInput } from '../message/message.interface.js';
import { TransactionStatus } from '../message/transaction-status.enum.js';
import { MessageStore, type EndResult } from '../store/message.store.js';
import type { CheckAttempt, StoredMessage } from '../store/stored-message.interface.js';
import { CommitNotifier } from '../context/commit-notifier.js';
import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { withTraceContext } from './build-message.js';
import { MessageSender } from './message-sender.service.js';

/** What `sendMessageInTransaction` passes to the local transaction. */
export interface SentHalfMessage<TBody = unknown> {
  /** Id of the stored half message. */
  readonly messageId: string;
  readonly message: MessageInput<TBody>;
}

/** What `sendMessageInTransaction` reports. */
export interface SendResult {
  messageId: string;
  /** The local transaction's outcome: COMMIT and ROLLBACK ended the message, UNKNOWN left it HALF. */
  status: TransactionStatus;
}

/** The local transaction of `sendMessageInTransaction`. */
export type LocalTransactionExecutor<TBody> = (
  half: SentHalfMessage<TBody>,
) => TransactionStatus | Promise<TransactionStatus>;

/**
 * Where a call of the explicit API runs. By default it joins the caller's transaction when there is
 * one (a `@TransactionalMessage` method, `TransactionContext.runInTransaction()`, an
 * `@nestjs-cls/transactional` transaction), so it commits or rolls back with it and needs no second
 * connection; otherwise it runs in a short transaction of its own.
 */
export interface ProducerCallOptions {
  /**
   * Run in this transaction: the EntityManager a plain `dataSource.transaction()` passes to its
   * callback (which the module cannot see on its own). It must belong to the module's DataSource.
   */
  manager?: EntityManager;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATUSES: ReadonlySet<unknown> = new Set(Object.values(TransactionStatus));

/**
 * The explicit two-phase API, for local transactions that do not run in this database (an
 * external payment provider, another DataSource). The half message is stored first; its outcome
 * comes later. A half message that never gets one is checked exactly like one that ended UNKNOWN.
 *
 * Every method runs in the caller's transaction when there is one (see {@link ProducerCallOptions}):
 * a `commit()` inside a transaction that then rolls back is rolled back with it. Outside any
 * transaction, each call is a short transaction of its own, and waits at most `acquireTimeoutMs`
 * for a pooled connection (ConnectionAcquireTimeoutError), never forever.
 */
export class TransactionalMessageProducer {
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(
    private readonly options: ResolvedOptions,
    private readonly runner: TransactionRunner,
    private readonly transactions: StoreTransactions,
    private readonly store: MessageStore,
    private readonly sender: MessageSender,
    private readonly notifier: CommitNotifier,
  ) {}

  /**
   * RocketMQ's `sendMessageInTransaction`: stores the half message, runs `localExecute`, then
   * commits or rolls the message back according to its answer; UNKNOWN leaves it HALF for the
   * check. If `localExecute` throws, the message stays HALF (its outcome is unknown: the local
   * transaction may have committed before the error) and the error is rethrown.
   */
  async sendMessageInTransaction<TBody>(
    message: MessageInput<TBody>,
    localExecute: LocalTransactionExecutor<TBody>,
    options: ProducerCallOptions = {},
  ): Promise<SendResult> {
    if (typeof localExecute !== 'function') {
      throw new InvalidMessageError('localExecute', localExecute, 'a function returning a TransactionStatus', 'sendMessageInTransaction');
    }
    const messageId = await this.sendHalfMessage(message, options);
    let status: TransactionStatus;
    try {
      status = await localExecute({ messageId, message });
    } catch (error) {
      this.logger.warn(
        `Local transaction of message ${messageId} (topic ${message.topic}) threw; the message stays HALF and will be checked: ${(error as Error)?.message ?? error}`,
      );
      throw error;
    }
    if (!STATUSES.has(status)) {
      throw new InvalidMessageError(
        'local transaction status',
        status,
        'TransactionStatus.COMMIT, ROLLBACK or UNKNOWN',
        'sendMessageInTransaction',
        `The half message ${messageId} was stored and stays HALF: the transaction check decides it.`,
      );
    }
    if (status === TransactionStatus.COMMIT) await this.commit(messageId, options);
    if (status === TransactionStatus.ROLLBACK) await this.rollback(messageId, options);
    return { messageId, status };
  }

  /**
   * Stores a half message (invisible to consumers) and returns its id. In the caller's transaction
   * when there is one (it becomes visible to checks when that commits, and vanishes if it rolls
   * back), else in a transaction of its own, committed before this returns.
   */
  async sendHalfMessage<TBody>(message: MessageInput<TBody>, options: ProducerCallOptions = {}): Promise<string> {
    const label = 'TransactionalMessageProducer.sendHalfMessage';
    const encoded = withTraceContext(encodeMessage(message, this.sender.defaults, label));
    await this.inTransaction(label, options, (manager) => this.store.insert(manager, encoded, MessageStatus.HALF));
    emitEvent('message.stored', () => ({
      instance: this.options.name,
      producerGroup: encoded.producerGroup,
      id: encoded.id,
      topic: encoded.topic,
      key: encoded.key,
      status: MessageStatus.HALF,
      bytes: encoded.body.length,
    }));
    return encoded.id;
  }

  /**
   * Commits a half message (or one parked after its checks ran out): it will be delivered. A second commit is a no-op; commit after
   * rollback throws TransactionAlreadyEndedError; an unknown id throws MessageNotFoundError.
   */
  async commit(messageId: string, options: ProducerCallOptions = {}): Promise<void> {
    await this.end(messageId, 'COMMIT', options);
  }

  /**
   * Rolls a half message back: it is never delivered. A second rollback is a no-op; rollback
   * after commit throws TransactionAlreadyEndedError; an unknown id throws MessageNotFoundError.
   */
  async rollback(messageId: string, options: ProducerCallOptions = {}): Promise<void> {
    await this.end(messageId, 'ROLLBACK', options);
  }

  /**
   * Puts a DEAD message back in the delivery queue with a fresh attempt budget (after the cause,
   * for example a missing topic or a too-small broker limit, was fixed). Under `relay.onDead:
   * 'hold'` it is delivered before the later messages of its key, which waited for it; under
   * 'skip' it arrives after them. Returns false if the message is not DEAD. An unknown id throws
   * MessageNotFoundError.
   */
  async replay(messageId: string, options: ProducerCallOptions = {}): Promise<boolean> {
    return this.changeDead('replay', messageId, options, (manager, id) => this.store.replay(manager, id));
  }

  /**
   * Gives up on a DEAD message: it becomes DISCARDED and is never delivered, and the later
   * messages of its key (held back under `relay.onDead: 'hold'`) go on without it. Returns false
   * if the message is not DEAD. An unknown id throws MessageNotFoundError.
   */
  async discard(messageId: string, options: ProducerCallOptions = {}): Promise<boolean> {
    return this.changeDead('discard', messageId, options, (manager, id) => this.store.discard(manager, id));
  }

  /** Every transaction check of a message so far, oldest first (empty if never checked). */
  getCheckHistory(messageId: string, options: ProducerCallOptions = {}): Promise<CheckAttempt[]> {
    const id = validateMessageId(messageId);
    return this.inTransaction('TransactionalMessageProducer.getCheckHistory', options, (manager) => this.store.checkHistory(manager, id));
  }

  /** The stored message with this id, or null. Inside a transaction, as that transaction sees it. */
  getMessage(messageId: string, options: ProducerCallOptions = {}): Promise<StoredMessage | null> {
    const id = validateMessageId(messageId);
    return this.inTransaction('TransactionalMessageProducer.getMessage', options, (manager) => this.store.find(manager, id));
  }

  private async end(messageId: string, requested: 'COMMIT' | 'ROLLBACK', options: ProducerCallOptions): Promise<void> {
    const id = validateMessageId(messageId);
    let result: EndResult | undefined;
    await this.inTransaction(
      `TransactionalMessageProducer.${requested.toLowerCase()}`,
      options,
      async (manager) => {
        result = await this.store.end(manager, id, requested);
        if (result === 'ended') emitEvent('message.ended', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup, id, outcome: requested }));
      },
      () => result === 'ended' && requested === 'COMMIT' && this.notifier.committedMaybeDelayed(),
    );
  }

  /** An operator's action on a DEAD message; the relay is woken once it committed (the key may go on). */
  private async changeDead(
    action: 'replay' | 'discard',
    messageId: string,
    options: ProducerCallOptions,
    change: (manager: EntityManager, id: string) => Promise<boolean>,
  ): Promise<boolean> {
    const id = validateMessageId(messageId);
    let changed = false;
    await this.inTransaction(
      `TransactionalMessageProducer.${action}`,
      options,
      async (manager) => {
        changed = await change(manager, id);
        if (!changed && (await this.store.findStatus(manager, id)) === null) throw new MessageNotFoundError(id);
      },
      () => changed && this.notifier.committed(),
    );
    return changed;
  }

  /**
   * Runs `work` in the caller's transaction (or `options.manager`'s), else in one of its own;
   * `committed` runs once the work's transaction committed, where that can be observed.
   */
  private async inTransaction<T>(
    label: string,
    options: ProducerCallOptions,
    work: (manager: EntityManager) => Promise<T>,
    committed?: () => unknown,
  ): Promise<T> {
    if (!this.options.producer) {
      throw new TransactionalMessageError(
        `${label} needs the producer side, and TransactionalMessageModule has no producerGroup (this instance only consumes). Set producerGroup.`,
      );
    }
    if (options === null || typeof options !== 'object') {
      throw new InvalidMessageError('options', options, '{ manager?: EntityManager } or nothing', label);
    }
    const caller = this.runner.callerTransaction(label, options.manager);
    if (!caller) {
      const result = await this.transactions.independent(label, work);
      committed?.();
      return result;
    }
    const result = await work(caller.manager);
    // A transaction of this module: after its commit. Otherwise its commit cannot be observed;
    // the relay's poll picks the message up.
    if (committed) caller.afterCommit?.push(() => void committed());
    return result;
  }
}

/** A message id, lower-cased: ids are UUIDs, and databases disagree on comparing them case-insensitively. */
function validateMessageId(messageId: unknown): string {
  if (typeof messageId !== 'string' || !UUID_PATTERN.test(messageId)) {
    throw new InvalidMessageError('id', messageId, 'a message id (UUID) as returned by sendHalfMessage');
  }
  return messageId.toLowerCase();
}
