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
