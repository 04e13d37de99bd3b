import { Inject } from '@nestjs/common';
import { TransactionalMessageAdmin } from './admin/transactional-message-admin.service.js';
import { TransactionalInbox } from './consumer/transactional-inbox.service.js';
import { TransactionalMessageInterceptor } from './consumer/transactional-message.interceptor.js';
import { TransactionContext } from './context/transaction-context.service.js';
import { TransactionalMessageHealthIndicator } from './operations/health.indicator.js';
import { registrationToken } from './options/instance-name.js';
import { TransactionalMessageProducer } from './producer/transactional-message.producer.js';
import { TransactionalMessageRelay } from './engine/transactional-message.relay.js';

/** @internal What a registration exports: under the class itself (default) or a token of its name. */
export const EXPORTED_SERVICES = [
  TransactionContext,
  TransactionalMessageProducer,
  TransactionalInbox,
  TransactionalMessageInterceptor,
  TransactionalMessageRelay,
  TransactionalMessageAdmin,
  TransactionalMessageHealthIndicator,
] as const;

/**
 * The injection token of the `TransactionalMessageProducer` of registration `name`
 * (`forRoot({ name })`); the class itself without a name.
 *
 * ```ts
 * constructor(@Inject(getTransactionalMessageProducerToken('archive')) private readonly archive: TransactionalMessageProducer) {}
 * ```
 */
export function getTransactionalMessageProducerToken(name?: string): typeof TransactionalMessageProducer | string {
  return registrationToken(TransactionalMessageProducer, name);
}

/** The injection token of the `TransactionContext` of registration `name`; the class itself without a name. */
export function getTransactionContextToken(name?: string): typeof TransactionContext | string {
  return registrationToken(TransactionContext, name);
}

/** The injection token of the `TransactionalInbox` of registration `name`; the class itself without a name. */
export function getTransactionalInboxToken(name?: string): typeof TransactionalInbox | string {
  return registrationToken(TransactionalInbox, name);
}

/** The injection token of the `TransactionalMessageRelay` of registration `name`; the class itself without a name. */
export function getTransactionalMessageRelayToken(name?: string): typeof TransactionalMessageRelay | string {
  return registrationToken(TransactionalMessageRelay, name);
}

/** The injection token of the `TransactionalMessageAdmin` of registration `name`; the class itself without a name. */
export function getTransactionalMessageAdminToken(name?: string): typeof TransactionalMessageAdmin | string {
  return registrationToken(TransactionalMessageAdmin, name);
}

/** The injection token of the `TransactionalMessageHealthIndicator` of registration `name`; the class itself without a name. */
export function getTransactionalMessageHealthIndicatorToken(name?: string): typeof TransactionalMessageHealthIndicator | string {
  return registrationToken(TransactionalMessageHealthIndicator, name);
}

/** Injects the `TransactionalMessageProducer` of registration `name` (the default one without). */
export function InjectTransactionalMessageProducer(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(getTransactionalMessageProducerToken(name));
}

/** Injects the `TransactionContext` of registration `name` (the default one without). */
export function InjectTransactionContext(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(getTransactionContextToken(name));
}
