import { TransactionalMessageModuleMissingError } from '../errors/module-missing.error.js';
import type { TransactionalMessageOptions } from '../options/message-method-options.interface.js';

/** @internal What runs a `@TransactionalMessage` method: a registration's sender, or a test capture. */
export interface MethodSender {
  sendFromMethod(
    instance: object,
    label: string,
    options: TransactionalMessageOptions,
    method: (...args: unknown[]) => unknown,
    args: unknown[],
  ): Promise<unknown>;
}

/** @internal The name a test capture binds under: it serves the methods of every registration name. */
export const ANY_REGISTRATION = '*';

/**
 * Where a binding is kept: on what it binds (a singleton instance, or the class of request-scoped
 * and transient ones), never in a table of the library's. `Symbol.for`, so that the CommonJS and
 * the ESM copy of the library read the same property.
 */
const BINDINGS = Symbol.for('nestjs-transactional-message.bindings');

/** By registration name, the senders bound, in the order they were bound. */
type Bindings = Map<string, MethodSender[]>;

function ownBindings(target: object): Bindings | undefined {
  return Object.hasOwn(target, BINDINGS) ? ((target as Record<symbol, Bindings>)[BINDINGS]) : undefined;
}

/**
 * @internal Binds the `@TransactionalMessage` methods of `target` that name registration `name`
 * to `sender`: for a singleton, the instance; for request-scoped and transient providers, whose
 * instances are created later, their class. The binding is a non-enumerable property of the target,
 * so it goes with it: two applications in one process bind their own instances. Returns the
 * function that undoes it.
 */
export function bindMethods(target: object, name: string, sender: MethodSender): () => void {
  let bindings = ownBindings(target);
  if (!bindings) {
    if (!Object.isExtensible(target)) {
      const what = typeof target === 'function' ? target.name : target.constructor?.name;
      throw new TransactionalMessageModuleMissingError(`${what} (frozen or sealed: its decorated methods cannot be bound)`, name);
    }
    bindings = new Map();
    Object.defineProperty(target, BINDINGS, { value: bindings, configurable: true, enumerable: false, writable: false });
  }
  let senders = bindings.get(name);
  if (!senders) bindings.set(name, (senders = []));
  senders.push(sender);
  const bound = senders;
  return () => {
    const at = bound.lastIndexOf(sender);
    if (at >= 0) bound.splice(at, 1);
  };
}

/**
 * @internal The sender of a decorated call: the one bound to the instance under the method's
 * registration name (or a capture's), else the one bound to its class. A request-scoped class bound
 * by two running applications at once is ambiguous and fails, as an unbound instance does.
 */
export function boundSender(instance: unknown, label: string, name: string): MethodSender {
  if (instance === null || typeof instance !== 'object') throw new TransactionalMessageModuleMissingError(label, name);
  const own = ownBindings(instance);
  // On an instance, the latest binding (a capture, or the registration that bound it last).
  const direct = own?.get(name)?.at(-1) ?? own?.get(ANY_REGISTRATION)?.at(-1);
  if (direct) return direct;
  const byClass = ownBindings(instance.constructor)?.get(name);
  if (byClass?.length === 1) return byClass[0]!;
  throw new TransactionalMessageModuleMissingError(label, name);
}
