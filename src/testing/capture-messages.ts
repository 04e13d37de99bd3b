import type { DataSource, EntityManager } from 'typeorm';
import { HalfMessageDraft } from '../context/half-message-draft.js';
import { ANY_REGISTRATION, bindMethods, type MethodSender } from '../context/method-binding.js';
import { transactionStorage, type TransactionScope } from '../context/transaction-context.storage.js';
import type { TransactionalMessageOptions } from '../options/message-method-options.interface.js';
import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import { JSON_CONTENT_TYPE, type EncodedMessage } from '../message/encode-message.js';
import type { TransactionStatus } from '../message/transaction-status.enum.js';
import { buildMessage } from '../producer/build-message.js';

/** A message a `@TransactionalMessage` call would have stored, as captured in a unit test. */
export interface CapturedMessage {
  /** The id (`currentHalfMessage().id` inside the method). */
  readonly id: string;
  /** `Class.method` that sent it. */
  readonly method: string;
  readonly topic: string;
  readonly key: string | null;
  readonly tags: readonly string[];
  readonly properties: Readonly<Record<string, string>>;
  /** The body as a consumer reads it: parsed JSON, or a Buffer for raw bytes. */
  readonly body: unknown;
  /** COMMIT (delivered), ROLLBACK (never delivered) or UNKNOWN (left for the check handler). */
  readonly outcome: TransactionStatus;
}

/** What `captureTransactionalMessages()` returns. */
export interface MessageCapture {
  /** The messages of the calls that returned, in order; a call that threw (or whose outer call threw) left none. */
  readonly messages: readonly CapturedMessage[];
  /**
   * Runs the `@TransactionalMessage` methods of `instance` (whichever registration they name)
   * through this capture, and returns it: a service created with `new`, or one a testing module
   * without `TransactionalMessageModule` created (`moduleRef.get(OrderService)`).
   */
  bind<T extends object>(instance: T): T;
  /** Forgets the messages captured so far. */
  clear(): void;
  /** Ends the capture: the instances it bound fail again (TransactionalMessageModuleMissingError). */
  stop(): void;
}

/** Options of {@link captureTransactionalMessages}: the module options the message encoding uses. */
export interface CaptureOptions {
  /** Default `'test'`. */
  producerGroup?: string;
  /** Default `1000000`. */
  maxMessageBytes?: number;
  /** Default `10000`. */
  checkImmunityMs?: number;
}

/** Inside a captured call, the transaction's EntityManager is the test's business: say so when it is used. */
function noDatabase(label: string): EntityManager {
  return new Proxy({} as EntityManager, {
    get(_target, property) {
      if (property === 'then') return undefined;
      throw new TransactionalMessageError(
        `${label} used the transaction's EntityManager (${String(property)}) while messages are captured without a database. ` +
          `Give the service a mocked TransactionContext, or test it against a real database (see docs/testing.md).`,
      );
    },
  });
}

/** The calls of one captured "transaction": committed together when the outermost call returns. */
interface CaptureScope extends TransactionScope {
  readonly pending: CapturedMessage[];
}

function decoded(message: EncodedMessage): unknown {
  return message.contentType === JSON_CONTENT_TYPE ? JSON.parse(message.body.toString('utf8')) : message.body;
}

/**
 * For unit tests: runs the `@TransactionalMessage` methods of the instances it binds (a service
 * created with `new`, with mocked dependencies) without a database, and records the message each
 * call would have stored. The method runs as it would in the application:
 * `currentHalfMessage()` works, the decorator's options and callbacks are applied, the message is
 * validated (InvalidMessageError, MessageTooLargeError, ...), and nested decorated calls share one
 * "transaction": if the outermost call throws, none of their messages are kept.
 *
 * ```ts
 * const capture = captureTransactionalMessages();
 * const orders = capture.bind(new OrderService(mockTransactionContext, mockGateway));
 * await orders.pay({ orderId: 'o-1', amount: 100 });
 * expect(capture.messages).toEqual([expect.objectContaining({ topic: 'order.paid', key: 'o-1', outcome: TransactionStatus.COMMIT })]);
 * capture.stop();
 * ```
 *
 * Only the instances bound are affected: captures of tests running side by side keep apart.
 */
export function captureTransactionalMessages(options: CaptureOptions = {}): MessageCapture {
  const messages: CapturedMessage[] = [];
  const defaults = {
    producerGroup: options.producerGroup ?? 'test',
    maxMessageBytes: options.maxMessageBytes ?? 1_000_000,
    checkImmunityMs: options.checkImmunityMs ?? 10_000,
  };
  const sender: MethodSender = {
    async sendFromMethod(instance: object, label: string, methodOptions: TransactionalMessageOptions, method: (...args: unknown[]) => unknown, args: unknown[]) {
      const outer = transactionStorage.getStore()?.scope as CaptureScope | undefined;
      const scope: CaptureScope =
        outer && 'pending' in outer
          ? outer
          : { dataSource: undefined as unknown as DataSource, manager: noDatabase(label), ended: false, afterCommit: [], rollbackOnly: undefined, pending: [] };
      const draft = new HalfMessageDraft(methodOptions.topic, label);
      const result = await transactionStorage.run({ scope, draft, label, outer: transactionStorage.getStore() }, () => method.apply(instance, args));
      const message = buildMessage(draft, methodOptions, args, result, label, defaults);
      scope.pending.push({
        id: message.id,
        method: label,
        topic: message.topic,
        key: message.key,
        tags: message.tags,
        properties: message.properties,
        body: decoded(message),
        outcome: draft.outcome,
      });
      if (scope !== outer) messages.push(...scope.pending.splice(0));
      return result;
    },
  };
  const unbind: Array<() => void> = [];
  return {
    messages,
    bind<T extends object>(instance: T): T {
      if (instance === null || typeof instance !== 'object') {
        throw new TransactionalMessageError(`capture.bind() takes the service instance whose decorated methods to capture, got ${String(instance)}.`);
      }
      unbind.push(bindMethods(instance, ANY_REGISTRATION, sender));
      return instance;
    },
    clear: () => void messages.splice(0),
    stop: () => {
      for (const undo of unbind.splice(0)) undo();
    },
  };
}
