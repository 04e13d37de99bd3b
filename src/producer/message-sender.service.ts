import { emitEvent } from '../events/transactional-message-events.js';
import { HalfMessageDraft } from '../context/half-message-draft.js';
import type { MethodSender } from '../context/method-binding.js';
import { TransactionRunner } from '../context/transaction-runner.service.js';
import type { TransactionalMessageOptions } from '../options/message-method-options.interface.js';
import { TransactionContextEndedError } from '../errors/transaction-context-ended.error.js';
import type { MessageDefaults } from '../message/encode-message.js';
import { buildMessage, withTraceContext } from './build-message.js';
import { MessageStatus } from '../message/message-status.enum.js';
import { TransactionStatus } from '../message/transaction-status.enum.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { MessageStore, type InitialStatus } from '../store/message.store.js';
import { CommitNotifier } from '../context/commit-notifier.js';

const STATUS_OF_OUTCOME: Record<TransactionStatus, InitialStatus> = {
  [TransactionStatus.COMMIT]: MessageStatus.COMMITTED,
  [TransactionStatus.ROLLBACK]: MessageStatus.ROLLED_BACK,
  [TransactionStatus.UNKNOWN]: MessageStatus.HALF,
};

/** @internal Runs `@TransactionalMessage` methods and stores their message in their transaction. */
export class MessageSender implements MethodSender {
  readonly defaults: MessageDefaults;
  private readonly instance: string;

  constructor(
    options: ResolvedOptions,
    private readonly runner: TransactionRunner,
    private readonly store: MessageStore,
    private readonly notifier: CommitNotifier,
  ) {
    this.instance = options.name;
    this.defaults = {
      producerGroup: options.producerGroup,
      maxMessageBytes: options.maxMessageBytes,
      checkImmunityMs: options.checkImmunityMs,
    };
  }

  private readonly wakeRelay = () => this.notifier.committed();
  private readonly wakeDelayedTimer = () => this.notifier.committedDelayed();

  sendFromMethod(
    instance: object,
    label: string,
    options: TransactionalMessageOptions,
    method: (...args: unknown[]) => unknown,
    args: unknown[],
  ): Promise<unknown> {
    const draft = new HalfMessageDraft(options.topic, label);
    return this.runner.run(label, options, draft, async (scope) => {
      const result = await method.apply(instance, args);
      if (scope.ended) throw new TransactionContextEndedError(label);
      const message = withTraceContext(buildMessage(draft, options, args, result, label, this.defaults));
      const status = await this.store.insert(scope.manager, message, STATUS_OF_OUTCOME[draft.outcome]);
      emitEvent('message.stored', () => ({ instance: this.instance, producerGroup: message.producerGroup, id: message.id, topic: message.topic, key: message.key, status, bytes: message.body.length }));
      if (status === MessageStatus.COMMITTED) scope.afterCommit.push(this.wakeRelay);
      if (status === MessageStatus.DELAYED) scope.afterCommit.push(this.wakeDelayedTimer);
      return result;
    });
  }
}
