import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import { validateTopic } from '../message/encode-message.js';
import { DEFAULT_INSTANCE_NAME, INSTANCE_NAME_RULE, isInstanceName } from '../options/instance-name.js';

/** @internal Metadata key of `@TransactionCheckHandler`. */
export const TRANSACTION_CHECK_HANDLER_METADATA = 'nestjs-transactional-message:transaction-check-handler';

/** Options of `@TransactionCheckHandler`. */
export interface TransactionCheckHandlerOptions {
  /**
   * The topic(s) whose half messages this handler checks. Leave it out for the producer group's
   * catch-all handler, asked about every topic that has no handler of its own.
   */
  topic?: string | readonly string[];
  /** The module registration (`forRoot({ name })`) whose half messages it checks. Default `'default'`. */
  instance?: string;
}

/** @internal */
export interface CheckHandlerMetadata {
  topics: string[] | null;
  instance: string;
}

/**
 * Marks a provider method as the transaction check handler (RocketMQ's `checkLocalTransaction`)
 * for half messages of this application's producer group: it receives a `HalfMessage` whose
 * local transaction ended UNKNOWN (or never ended) and answers `TransactionStatus.COMMIT`,
 * `ROLLBACK` or `UNKNOWN` (ask again later). A handler that throws or does not answer within
 * `check.handlerTimeoutMs` counts as UNKNOWN. Discovered at bootstrap: one handler per topic, at
 * most one catch-all, on singleton providers only.
 *
 * ```ts
 * @TransactionCheckHandler({ topic: 'order.paid' })
 * async check(message: HalfMessage<OrderPaid>): Promise<TransactionStatus> {
 *   const payment = await this.gateway.status(message.body.orderId);
 *   return payment.settled ? TransactionStatus.COMMIT : payment.failed ? TransactionStatus.ROLLBACK : TransactionStatus.UNKNOWN;
 * }
 * ```
 */
export function TransactionCheckHandler(options: TransactionCheckHandlerOptions = {}): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const label = `${typeof target === 'function' ? target.name : target.constructor.name}.${String(propertyKey)}`;
    if (typeof target === 'function' || typeof descriptor.value !== 'function') {
      throw new TransactionalMessageError(`@TransactionCheckHandler must decorate an instance method; ${label} is not one.`);
    }
    if (options === null || typeof options !== 'object') {
      throw new TransactionalMessageError(`@TransactionCheckHandler on ${label}: options must be an object like { topic: 'order.paid' }.`);
    }
    const where = `@TransactionCheckHandler on ${label}`;
    let topics: string[] | null = null;
    if (options.topic !== undefined) {
      const list = typeof options.topic === 'string' ? [options.topic] : options.topic;
      if (!Array.isArray(list) || list.length === 0) {
        throw new TransactionalMessageError(`${where}: topic must be a topic or a non-empty array of topics.`);
      }
      topics = list.map((topic) => validateTopic(topic, where));
    }
    if (options.instance !== undefined && !isInstanceName(options.instance)) {
      throw new TransactionalMessageError(`${where}: instance is ${JSON.stringify(options.instance)}; expected ${INSTANCE_NAME_RULE}.`);
    }
    const instance = options.instance ?? DEFAULT_INSTANCE_NAME;
    Reflect.defineMetadata(TRANSACTION_CHECK_HANDLER_METADATA, { topics, instance } satisfies CheckHandlerMetadata, descriptor.value);
  };
}
