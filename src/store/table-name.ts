import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';

/** Default name of the message table. */
export const DEFAULT_TABLE_NAME = 'transactional_message';

/** Default name of the consumer's inbox table. */
export const DEFAULT_INBOX_TABLE_NAME = 'transactional_message_inbox';

const TABLE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;

/**
 * @internal Table names are used in SQL text, so only plain identifiers are accepted, short enough
 * that the derived names (`<table>_check`, `<table>_committed_key_idx`) stay within PostgreSQL's and
 * MySQL's identifier limits (63/64).
 */
export function validateTableName(tableName: unknown, option = 'tableName'): string {
  if (typeof tableName !== 'string' || !TABLE_NAME_PATTERN.test(tableName)) {
    throw new InvalidModuleOptionsError(
      option,
      tableName,
      'a plain SQL identifier of 1-40 characters: a letter or underscore, then letters, digits or underscores',
    );
  }
  return tableName;
}
