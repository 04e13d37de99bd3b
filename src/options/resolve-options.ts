import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';
import { MAX_DURATION_MS } from '../message/encode-message.js';
import { resolveDialect } from '../store/dialects/resolve-dialect.js';
import { DEFAULT_TABLE_NAME, validateTableName } from '../store/table-name.js';
import type { ResolvedOptions, TransactionalMessageModuleOptions } from './transactional-message-options.interface.js';

/** Defaults of the module options. */
export const DEFAULT_OPTIONS = {
  tableName: DEFAULT_TABLE_NAME,
  checkImmunityMs: 10_000,
  maxMessageBytes: 1_000_000,
  queriesOutsideTransaction: 'error',
  joinClsTransactions: true,
} as const;

const KNOWN_OPTIONS = new Set<string>([
  'dataSource',
  'producerGroup',
  'tableName',
  'checkImmunityMs',
  'maxMessageBytes',
  'queriesOutsideTransaction',
  'joinClsTransactions',
  'clsConnectionName',
]);

const PRODUCER_GROUP_PATTERN = /^[A-Za-z0-9._:-]{1,255}$/;
const MAX_MESSAGE_BYTES_LIMIT = 64 * 1024 * 1024;

/** @internal Merges defaults into the options and validates every one; throws InvalidModuleOptionsError. */
export function resolveOptions(options: TransactionalMessageModuleOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidModuleOptionsError('(options)', options, 'an object with at least dataSource and producerGroup');
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) {
      throw new InvalidModuleOptionsError(name, (options as unknown as Record<string, unknown>)[name], `no such option; known options are ${[...KNOWN_OPTIONS].join(', ')}`);
    }
  }
  const { dataSource } = options;
  if (!dataSource || typeof dataSource !== 'object' || typeof dataSource.transaction !== 'function' || !dataSource.options) {
    throw new InvalidModuleOptionsError('dataSource', dataSource, 'a TypeORM DataSource');
  }
  try {
    resolveDialect(dataSource);
  } catch (error) {
    throw new InvalidModuleOptionsError('dataSource', `type ${dataSource.options.type}`, (error as Error).message);
  }
  if (typeof options.producerGroup !== 'string' || !PRODUCER_GROUP_PATTERN.test(options.producerGroup)) {
    throw new InvalidModuleOptionsError(
      'producerGroup',
      options.producerGroup,
      "1-255 characters of letters, digits, '.', '_', '-' or ':'",
    );
  }
  const resolved: ResolvedOptions = {
    dataSource,
    producerGroup: options.producerGroup,
    tableName: validateTableName(options.tableName ?? DEFAULT_OPTIONS.tableName),
    checkImmunityMs: integerOption('checkImmunityMs', options.checkImmunityMs ?? DEFAULT_OPTIONS.checkImmunityMs, 0, MAX_DURATION_MS),
    maxMessageBytes: integerOption('maxMessageBytes', options.maxMessageBytes ?? DEFAULT_OPTIONS.maxMessageBytes, 1, MAX_MESSAGE_BYTES_LIMIT),
    queriesOutsideTransaction: options.queriesOutsideTransaction ?? DEFAULT_OPTIONS.queriesOutsideTransaction,
    joinClsTransactions: options.joinClsTransactions ?? DEFAULT_OPTIONS.joinClsTransactions,
    clsConnectionName: options.clsConnectionName,
  };
  if (!['error', 'warn', 'allow'].includes(resolved.queriesOutsideTransaction)) {
    throw new InvalidModuleOptionsError('queriesOutsideTransaction', resolved.queriesOutsideTransaction, "'error', 'warn' or 'allow'");
  }
  if (typeof resolved.joinClsTransactions !== 'boolean') {
    throw new InvalidModuleOptionsError('joinClsTransactions', resolved.joinClsTransactions, 'true or false');
  }
  if (resolved.clsConnectionName !== undefined && (typeof resolved.clsConnectionName !== 'string' || !resolved.clsConnectionName)) {
    throw new InvalidModuleOptionsError('clsConnectionName', resolved.clsConnectionName, 'a non-empty string, or leave it out');
  }
  return resolved;
}

function integerOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidModuleOptionsError(name, value, `a whole number from ${min} to ${max}`);
  }
  return value;
}
