import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as api from '../index.js';
import { TransactionalMessageErrorCode } from './error-codes.js';
import { TransactionalMessageError } from './transactional-message.error.js';

type ErrorClass = typeof TransactionalMessageError;
const isErrorClass = (value: unknown): value is ErrorClass =>
  typeof value === 'function' && (value === TransactionalMessageError || value.prototype instanceof TransactionalMessageError);

/** Every error class of src/errors, exported or not. */
async function allErrorClasses(): Promise<Array<[string, ErrorClass]>> {
  const folder = dirname(fileURLToPath(import.meta.url));
  const files = readdirSync(folder).filter((f) => /\.error\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'));
  const classes: Array<[string, ErrorClass]> = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(`${folder}/${file}`).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(module)) if (isErrorClass(value)) classes.push([name, value]);
  }
  return classes;
}

const CATEGORIES = ['TransactionalMessageError', 'TransactionalMessageConfigurationError', 'TransactionUsageError'];

describe('errors and their codes', () => {
  const exported = Object.entries(api).filter((entry): entry is [string, ErrorClass] => isErrorClass(entry[1]));

  it('the public API exports the classes callers branch on, not one per error', () => {
    expect(exported.map(([name]) => name).sort()).toEqual(
      [
        'ConnectionAcquireTimeoutError',
        'InvalidMessageError',
        'MessageNotFoundError',
        'PartialPublishError',
        'PreparedStatementUnavailableError',
        'TransactionAlreadyEndedError',
        'TransactionUsageError',
        'TransactionalMessageConfigurationError',
        'TransactionalMessageError',
      ].sort(),
    );
  });

  it('every error class is, or extends, an exported class other than the base, and has a TM_ code of its own', async () => {
    const classes = await allErrorClasses();
    expect(classes.length).toBeGreaterThan(20);
    const codes = new Map<string, string>();
    for (const [name, cls] of classes) {
      expect(`${name}: ${cls.code}`).toMatch(/^\w+: TM_[A-Z_]+$/);
      expect(codes.get(cls.code)).toBeUndefined();
      codes.set(cls.code, name);
      if (name === 'TransactionalMessageError') continue;
      const catchable = exported.find(([exportedName, e]) => exportedName !== 'TransactionalMessageError' && (cls === e || cls.prototype instanceof e));
      expect([name, catchable?.[0]]).toEqual([name, expect.any(String)]);
    }
    // The codes map names every code an instance can carry (the categories' own codes are never on one).
    const leafCodes = classes.filter(([name]) => !CATEGORIES.includes(name)).map(([, cls]) => cls.code).sort();
    expect(Object.values(TransactionalMessageErrorCode).sort()).toEqual(leafCodes);
  });

  it('are on every instance, and the families catch their members', async () => {
    const { MessageTooLargeError } = await import('./message-too-large.error.js');
    const { QueryOutsideTransactionError } = await import('./query-outside-transaction.error.js');
    const { InvalidModuleOptionsError } = await import('./invalid-module-options.error.js');
    const tooLarge = new MessageTooLargeError('t', 20, 10);
    expect(tooLarge).toBeInstanceOf(api.InvalidMessageError);
    expect(tooLarge.code).toBe(api.TransactionalMessageErrorCode.MESSAGE_TOO_LARGE);
    expect(tooLarge.name).toBe('MessageTooLargeError');
    expect(new QueryOutsideTransactionError()).toBeInstanceOf(api.TransactionUsageError);
    expect(new InvalidModuleOptionsError('relay.leaseMs', -1, 'a positive number')).toBeInstanceOf(api.TransactionalMessageConfigurationError);
    expect(new api.MessageNotFoundError('x').code).toBe('TM_MESSAGE_NOT_FOUND');
    expect(new TransactionalMessageError('x').code).toBe('TM_ERROR');
  });
});
