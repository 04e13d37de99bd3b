import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';

/**
 * The name of the registration `forRoot()` / `forRootAsync()` make without a `name`, and that
 * `@TransactionalMessage` / `@TransactionCheckHandler` serve without an `instance`.
 */
export const DEFAULT_INSTANCE_NAME = 'default';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** @internal What an instance name may be, for error messages. */
export const INSTANCE_NAME_RULE = `an instance name of 1-63 letters, digits, '_', '.' or '-' (starting with a letter or digit), or nothing for '${DEFAULT_INSTANCE_NAME}'`;

/** @internal Whether `name` is a valid instance name. */
export function isInstanceName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

/**
 * @internal The injection token of `service` in registration `name`: the class itself for the
 * default registration (so plain constructor injection works), a string of both names otherwise.
 * The public helpers (`getTransactionalMessageProducerToken()` and the like) are built on it.
 */
export function registrationToken<T extends Function>(service: T, name: string | undefined): T | string {
  if (name === undefined || name === DEFAULT_INSTANCE_NAME) return service;
  return registrationAlias(service, name);
}

/**
 * @internal The token of `service` in registration `name` that every registration provides,
 * the default one included: what the library looks up through `ModuleRef` (by class, the lookup
 * could find the service of any registration, as each provides it under its class inside).
 */
export function registrationAlias(service: Function, name: string): string {
  if (!isInstanceName(name)) throw new InvalidModuleOptionsError('name', name, INSTANCE_NAME_RULE);
  return `nestjs-transactional-message:${name}:${service.name}`;
}
