import { boundSender } from '../context/method-binding.js';
import { DEFAULT_INSTANCE_NAME } from '../options/instance-name.js';
import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import { TRANSACTIONAL_MESSAGE_METADATA } from '../common/constants.js';
import { copyMethodMetadata } from './copy-method-metadata.js';
import type { TransactionalMessageOptions } from '../options/message-method-options.interface.js';
import { validateMethodOptions } from './validate-method-options.js';

/**
 * Makes a provider method transactional and sends a message with its outcome.
 *
 * The method runs inside one TypeORM transaction: the caller's, when it has one (an outer
 * transactional call, `TransactionContext.runInTransaction()`, an `@nestjs-cls/transactional`
 * transaction), otherwise a new one. Write business data through `TransactionContext.manager`.
 * When the method returns, the message is stored in that same transaction:
 *
 * - normal return: COMMIT, the message is committed with the transaction and delivered;
 * - `currentHalfMessage().rollback()`: business writes commit, the message is never delivered;
 * - `currentHalfMessage().unknown()`: the message stays a half message and the check handler
 *   for its topic decides after the check immunity;
 * - throwing: the transaction (when the method opened it) rolls back; no message is stored.
 *
 * The decorated method always returns a Promise. Its name and metadata are kept, so other
 * decorators on it keep working.
 *
 * The decorator keeps no state: it records the options as metadata and puts in place of the
 * method a wrapper that asks the instance which registration serves it. The module's explorer binds
 * every provider and controller Nest creates at bootstrap (a test binds its own with
 * `captureTransactionalMessages().bind()`). The wrapper has to be on the prototype: Nest's router
 * and `@nestjs/microservices` take a handler from the prototype before any module's init hook runs.
 */
export function TransactionalMessage<TArgs extends unknown[] = any[], TResult = any>(
  options: TransactionalMessageOptions<TArgs, TResult>,
): MethodDecorator {
  return (target, propertyKey, descriptor: PropertyDescriptor) => {
    const label = `${typeof target === 'function' ? target.name : target.constructor.name}.${String(propertyKey)}`;
    if (typeof target === 'function') {
      throw new TransactionalMessageError(`@TransactionalMessage cannot decorate static method ${label}; use an instance method of a provider.`);
    }
    const original = descriptor.value as ((...args: unknown[]) => unknown) | undefined;
    if (typeof original !== 'function') {
      throw new TransactionalMessageError(`@TransactionalMessage can only decorate methods; ${label} is not one.`);
    }
    if (Reflect.hasOwnMetadata(TRANSACTIONAL_MESSAGE_METADATA, original)) {
      throw new TransactionalMessageError(`@TransactionalMessage is applied twice to ${label}; keep one.`);
    }
    const validated = validateMethodOptions(options as TransactionalMessageOptions, `@TransactionalMessage on ${label}`);
    const instanceName = validated.instance ?? DEFAULT_INSTANCE_NAME;
    const wrapper = function (this: object, ...args: unknown[]): Promise<unknown> {
      try {
        return boundSender(this, label, instanceName).sendFromMethod(this, label, validated, original, args);
      } catch (error) {
        return Promise.reject(error);
      }
    };
    copyMethodMetadata(original, wrapper);
    Reflect.defineMetadata(TRANSACTIONAL_MESSAGE_METADATA, validated, wrapper);
    descriptor.value = wrapper;
    return descriptor;
  };
}
