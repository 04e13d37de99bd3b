import type { DataSource } from 'typeorm';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';
import { DEFAULT_OPTIONS, resolveOptions } from './resolve-options.js';

const dataSource = { options: { type: 'postgres' }, transaction: () => undefined } as unknown as DataSource;

describe('resolveOptions', () => {
  it('merges the defaults', () => {
    expect(resolveOptions({ dataSource, producerGroup: 'shop' })).toEqual({
      dataSource,
      producerGroup: 'shop',
      tableName: DEFAULT_OPTIONS.tableName,
      checkImmunityMs: 10_000,
      maxMessageBytes: 1_000_000,
      queriesOutsideTransaction: 'error',
      joinClsTransactions: true,
      clsConnectionName: undefined,
    });
  });

  it.each([
    [{ producerGroup: 'shop' }, "'dataSource' is undefined"],
    [{ dataSource: { options: { type: 'oracle' }, transaction: () => 1 }, producerGroup: 'shop' }, 'DataSource type "oracle" is not supported'],
    [{ dataSource, producerGroup: 'a'.repeat(256) }, "'producerGroup'"],
    [{ dataSource, producerGroup: 'shop', checkImmunityMs: 0.5 }, "'checkImmunityMs' is 0.5"],
    [{ dataSource, producerGroup: 'shop', maxMessageBytes: 2 ** 40 }, "'maxMessageBytes' is 1099511627776"],
    [{ dataSource, producerGroup: 'shop', joinClsTransactions: 'yes' }, "'joinClsTransactions' is \"yes\""],
    [{ dataSource, producerGroup: 'shop', clsConnectionName: '' }, "'clsConnectionName' is \"\""],
    [{ dataSource, producerGroup: 'shop', tabelName: 'x' }, "'tabelName' is \"x\"; expected no such option"],
  ])('refuses %p', (options, expected) => {
    expect(() => resolveOptions(options as never)).toThrow(InvalidModuleOptionsError);
    expect(() => resolveOptions(options as never)).toThrow(expected);
  });
});
