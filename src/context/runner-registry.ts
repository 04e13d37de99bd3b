import { TransactionalMessageModuleMissingError } from '../errors/module-missing.error.js';
import type { MessageSender } from '../producer/message-sender.service.js';

const byInstance = new WeakMap<object, MessageSender>();
const byClass = new WeakMap<Function, Set<MessageSender>>();

/**
 * @internal Which running module serves a decorated instance. A decorator cannot be injected, so
 * the explorer records, at bootstrap, every instance (or, for request-scoped and transient
 * providers, every class) with decorated methods. Two applications in one process keep apart.
 */
export const senderRegistry = {
  addInstance(instance: object, sender: MessageSender): void {
    byInstance.set(instance, sender);
  },
  addClass(type: Function, sender: MessageSender): void {
    let senders = byClass.get(type);
    if (!senders) byClass.set(type, (senders = new Set()));
    senders.add(sender);
  },
  remove(instance: object | undefined, type: Function, sender: MessageSender): void {
    if (instance && byInstance.get(instance) === sender) byInstance.delete(instance);
    byClass.get(type)?.delete(sender);
  },
  find(instance: object | undefined, label: string): MessageSender {
    if (instance === null || typeof instance !== 'object') throw new TransactionalMessageModuleMissingError(label);
    const direct = byInstance.get(instance);
    if (direct) return direct;
    const senders = byClass.get(instance.constructor);
    if (senders?.size === 1) return senders.values().next().value as MessageSender;
    throw new TransactionalMessageModuleMissingError(label);
  },
};
