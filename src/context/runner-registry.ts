import { TransactionalMessageModuleMissingError } from '../errors/module-missing.error.js';
import type { TransactionalMessageOptions } from '../options/message-method-options.interface.js';

/** @internal What runs a `@TransactionalMessage` method: the module's sender, or the test capture. */
export interface MethodSender {
  sendFromMethod(
    instance: object,
    label: string,
    options: TransactionalMessageOptions,
    method: (...args: unknown[]) => unknown,
    args: unknown[],
  ): Promise<unknown>;
}

let fallback: MethodSender | undefined;

const byInstance = new WeakMap<object, MethodSender>();
const byClass = new WeakMap<Function, Set<MethodSender>>();

/**
 * @internal Which running module serves a decorated instance. A decorator cannot be injected, so
 * the explorer records, at bootstrap, every instance (or, for request-scoped and transient
 * providers, every class) with decorated methods. Two applications in one process keep apart.
 */
export const senderRegistry = {
  addInstance(instance: object, sender: MethodSender): void {
    byInstance.set(instance, sender);
  },
  addClass(type: Function, sender: MethodSender): void {
    let senders = byClass.get(type);
    if (!senders) byClass.set(type, (senders = new Set()));
    senders.add(sender);
  },
  remove(instance: object | undefined, type: Function, sender: MethodSender): void {
    if (instance && byInstance.get(instance) === sender) byInstance.delete(instance);
    byClass.get(type)?.delete(sender);
  },
  /** The sender of instances no module serves (the testing capture), or none. Returns the previous one. */
  setFallback(sender: MethodSender | undefined): MethodSender | undefined {
    const previous = fallback;
    fallback = sender;
    return previous;
  },
  find(instance: object | undefined, label: string): MethodSender {
    if (instance === null || typeof instance !== 'object') throw new TransactionalMessageModuleMissingError(label);
    const direct = byInstance.get(instance);
    if (direct) return direct;
    const senders = byClass.get(instance.constructor);
    if (senders?.size === 1) return senders.values().next().value as MethodSender;
    if (fallback) return fallback;
    throw new TransactionalMessageModuleMissingError(label);
  },
};
