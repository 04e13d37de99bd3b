import { Injectable, Logger } from '@nestjs/common';
import { TransactionRunner } from '../context/transaction-runner.service.js';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { MessageNotFoundError } from '../errors/message-not-found.error.js';
import { encodeMessage } from '../message/encode-message.js';
import { MessageStatus } from '../message/message-status.enum.js';
import type { MessageInput } from '../message/message.interface.js';
import { TransactionStatus } from '../message/transaction-status.enum.js';
import { MessageStore } from '../store/message.store.js';
import type { CheckAttempt, StoredMessage } from '../store/stored-message.interface.js';
import { CommitNotifier } from '../relay/commit-notifier.js';
import { LOGGER_CONTEXT } from '../transactional-message.constants.js';
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

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATUSES: ReadonlySet<unknown> = new Set(Object.values(TransactionStatus));

/**
 * The explicit two-phase API, for local transactions that do not run in this database (an
 * external payment provider, another DataSource). The half message is stored and committed in a
 * transaction of its own first; its outcome comes later. A half message that never gets one is
 * checked exactly like one that ended UNKNOWN.
 */
@Injectable()
export class TransactionalMessageProducer {
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(
    private readonly runner: TransactionRunner,
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
  ): Promise<SendResult> {
    if (typeof localExecute !== 'function') {
      throw new InvalidMessageError('localExecute', localExecute, 'a function returning a TransactionStatus', 'sendMessageInTransaction');
    }
    const messageId = await this.sendHalfMessage(message);
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
        `TransactionStatus.COMMIT, ROLLBACK or UNKNOWN (message ${messageId} stays HALF and will be checked)`,
        'sendMessageInTransaction',
      );
    }
    if (status === TransactionStatus.COMMIT) await this.commit(messageId);
    if (status === TransactionStatus.ROLLBACK) await this.rollback(messageId);
    return { messageId, status };
  }

  /** Stores a half message (invisible to consumers) in a transaction of its own; returns its id. */
  async sendHalfMessage<TBody>(message: MessageInput<TBody>): Promise<string> {
    const encoded = encodeMessage(message, this.sender.defaults, 'TransactionalMessageProducer.sendHalfMessage');
    await this.runner.independent('TransactionalMessageProducer.sendHalfMessage', (manager) =>
      this.store.insert(manager, encoded, MessageStatus.HALF),
    );
    return encoded.id;
  }

  /**
   * Commits a half message (or one parked after its checks ran out): it will be delivered. A second commit is a no-op; commit after
   * rollback throws TransactionAlreadyEndedError; an unknown id throws MessageNotFoundError.
   */
  async commit(messageId: string): Promise<void> {
    await this.end(messageId, 'COMMIT');
  }

  /**
   * Rolls a half message back: it is never delivered. A second rollback is a no-op; rollback
   * after commit throws TransactionAlreadyEndedError; an unknown id throws MessageNotFoundError.
   */
  async rollback(messageId: string): Promise<void> {
    await this.end(messageId, 'ROLLBACK');
  }

  /**
   * Puts a DEAD message back in the delivery queue with a fresh attempt budget (after the cause,
   * for example a missing topic or a too-small broker limit, was fixed). Returns false if the
   * message is not DEAD. An unknown id throws MessageNotFoundError.
   */
  async replay(messageId: string): Promise<boolean> {
    validateMessageId(messageId);
    const replayed = await this.runner.independent('TransactionalMessageProducer.replay', async (manager) => {
      if (await this.store.replay(manager, messageId)) return true;
      if ((await this.store.findStatus(manager, messageId)) === null) throw new MessageNotFoundError(messageId);
      return false;
    });
    if (replayed) this.notifier.committed();
    return replayed;
  }

  /** Every transaction check of a message so far, oldest first (empty if never checked). */
  getCheckHistory(messageId: string): Promise<CheckAttempt[]> {
    validateMessageId(messageId);
    return this.runner.independent('TransactionalMessageProducer.getCheckHistory', (manager) => this.store.checkHistory(manager, messageId));
  }

  /** The stored message with this id, or null. */
  getMessage(messageId: string): Promise<StoredMessage | null> {
    validateMessageId(messageId);
    return this.runner.independent('TransactionalMessageProducer.getMessage', (manager) => this.store.find(manager, messageId));
  }

  private async end(messageId: string, requested: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    validateMessageId(messageId);
    const result = await this.runner.independent(`TransactionalMessageProducer.${requested.toLowerCase()}`, (manager) =>
      this.store.end(manager, messageId, requested),
    );
    if (result === 'ended' && requested === 'COMMIT') this.notifier.committed();
  }
}

function validateMessageId(messageId: unknown): void {
  if (typeof messageId !== 'string' || !UUID_PATTERN.test(messageId)) {
    throw new InvalidMessageError('id', messageId, 'a message id (UUID) as returned by sendHalfMessage');
  }
}
