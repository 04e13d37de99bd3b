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

/** Per decorated instance (singletons), the sender of each module registration by name. */
const byInstance = new WeakMap<object, Map<string, MethodSender>>();
/** Per class (request-scoped and transient providers), the senders of each registration by name. */
const byClass = new WeakMap<Function, Map<string, Set<MethodSender>>>();

/**
 * @internal Which running module registration serves a decorated instance. A decorator cannot be
 * injected, so each registration's explorer records, at bootstrap, every instance (or, for
 * request-scoped and transient providers, every class) with methods it serves, under its name
 * (`forRoot({ name })`): one instance may have methods of two registrations. Two applications in
 * one process keep apart.
 */
export const senderRegistry = {
  addInstance(instance: object, name: string, sender: MethodSender): void {
    let senders = byInstance.get(instance);
    if (!senders) byInstance.set(instance, (senders = new Map()));
    senders.set(name, sender);
  },
  addClass(type: Function, name: string, sender: MethodSender): void {
    let names = byClass.get(type);
    if (!names) byClass.set(type, (names = new Map()));
    let senders = names.get(name);
    if (!senders) names.set(name, (senders = new Set()));
    senders.add(sender);
  },
  remove(instance: object | undefined, type: Function, name: string, sender: MethodSender): void {
    const senders = instance ? byInstance.get(instance) : undefined;
    if (senders?.get(name) === sender) senders.delete(name);
    byClass.get(type)?.get(name)?.delete(sender);
  },
  /** The sender of instances no module serves (the testing capture), or none. Returns the previous one. */
  setFallback(sender: MethodSender | undefined): MethodSender | undefined {
    const previous = fallback;
    fallback = sender;
    return previous;
  },
  find(instance: object | undefined, label: string, name: string): MethodSender {
    if (instance === null || typeof instance !== 'object') throw new TransactionalMessageModuleMissingError(label, name);
    const direct = byInstance.get(instance)?.get(name);
    if (direct) return direct;
    const senders = byClass.get(instance.constructor)?.get(name);
    if (senders?.size === 1) return senders.values().next().value as MethodSender;
    if (fallback) return fallback;
    throw new TransactionalMessageModuleMissingError(label, name);
  },
};
