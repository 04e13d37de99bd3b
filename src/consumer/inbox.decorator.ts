import { applyDecorators, createParamDecorator, SetMetadata, UseInterceptors, type ExecutionContext } from '@nestjs/common';
import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import { DEFAULT_INSTANCE_NAME, INSTANCE_NAME_RULE, isInstanceName } from '../options/instance-name.js';
import { readConsumedMessage, type ConsumedMessage } from './consumed-message.js';
import { rpcHeaders } from './rpc-headers.js';
import { INBOX_METADATA, TAG_FILTER_METADATA, type InboxMetadata } from './consumer.constants.js';
import { TransactionalMessageInterceptor } from './transactional-message.interceptor.js';
import { parseTagExpression, type TagExpression } from './tag-expression.js';

/** Options of `@Inbox`. */
export interface InboxDecoratorOptions {
  /**
   * The consumer's name in the inbox: messages are deduplicated per consumer, so two handlers of
   * one message each run once. Default: `Class.method` of the handler. Keep it stable across
   * deployments, or a redelivery after a rename runs again.
   */
  consumer?: string;
  /** RocketMQ tag expression (`'paid || refunded'`, `'*'`): messages without a matching tag are skipped. Default `'*'`. */
  tags?: string;
  /**
   * The registration (`forRoot({ name })`) whose database holds the inbox: the handler's
   * transaction is on its DataSource. Default: the unnamed registration.
   */
  instance?: string;
}

/**
 * Makes an `@EventPattern` Kafka handler idempotent: it runs inside a database transaction that
 * records the message id (`tm-message-id`) for this consumer, so a redelivered message has its
 * effect exactly once. Inside, `TransactionContext.manager` is that transaction, and
 * `@TransactionalMessage` methods join it (consume, change, produce: all or nothing).
 *
 * If the handler throws, the transaction (and the record) rolls back and the error reaches the
 * transport, which redelivers the message (`@nestjs/microservices` Kafka: kafkajs retries it).
 * Requires `inbox: { enabled: true }` in the registration it names (`{ instance }`, the unnamed one without).
 *
 * ```ts
 * @EventPattern('order.paid')
 * @Inbox({ consumer: 'logistics', tags: 'paid' })
 * async onOrderPaid(@Payload() order: OrderPaid, @MessageInfo() info: ConsumedMessage) { ... }
 * ```
 */
export function Inbox(options: InboxDecoratorOptions = {}): MethodDecorator {
  if (options === null || typeof options !== 'object') {
    throw new TransactionalMessageError(`@Inbox options must be an object like { consumer: 'logistics' }, got ${String(options)}.`);
  }
  if (options.consumer !== undefined && (typeof options.consumer !== 'string' || options.consumer.length === 0 || options.consumer.length > 255)) {
    throw new TransactionalMessageError(`@Inbox consumer must be a name of 1-255 characters, got ${JSON.stringify(options.consumer)}.`);
  }
  if (options.instance !== undefined && !isInstanceName(options.instance)) {
    throw new TransactionalMessageError(`@Inbox instance is ${JSON.stringify(options.instance)}; it must be ${INSTANCE_NAME_RULE}.`);
  }
  const decorators = [
    SetMetadata(INBOX_METADATA, { consumer: options.consumer, instance: options.instance ?? DEFAULT_INSTANCE_NAME } satisfies InboxMetadata),
    UseInterceptors(TransactionalMessageInterceptor),
  ];
  if (options.tags !== undefined) decorators.unshift(SetMetadata(TAG_FILTER_METADATA, parseTagExpression(options.tags, '@Inbox')));
  return applyDecorators(...decorators);
}

/**
 * Skips messages whose tags do not match a RocketMQ tag expression (`'paid || refunded'`), on an
 * `@EventPattern` handler without the inbox. A skipped message is acknowledged, not retried.
 */
export function TagFilter(expression: string): MethodDecorator {
  const parsed: TagExpression = parseTagExpression(expression, '@TagFilter');
  return applyDecorators(SetMetadata(TAG_FILTER_METADATA, parsed), UseInterceptors(TransactionalMessageInterceptor));
}

/**
 * Parameter decorator for `@EventPattern` handlers: the message id, producer group, key, tags and
 * user properties of the message, from its headers (Kafka, RabbitMQ, NATS, MQTT 5) or its envelope (Redis).
 */
export const MessageInfo = createParamDecorator((_data: unknown, context: ExecutionContext): ConsumedMessage => {
  const rpc = context.switchToRpc();
  return readConsumedMessage(rpcHeaders(rpc.getContext(), rpc.getData()));
});
