import * as api from '../index.js';
import { TransactionalMessageError } from './transactional-message.error.js';

// Every exported error class carries a stable code of its own: callers branch on it.
describe('error codes', () => {
  const classes = Object.entries(api).filter(
    (entry): entry is [string, typeof TransactionalMessageError] =>
      typeof entry[1] === 'function' && (entry[1] === TransactionalMessageError || entry[1].prototype instanceof TransactionalMessageError),
  );
  const codeOf = (cls: typeof TransactionalMessageError): string => cls.code;

  it('are exported for more than a handful of classes', () => {
    expect(classes.length).toBeGreaterThan(10);
  });

  it('are TM_ codes, one per class, TM_ERROR only on the base class', () => {
    const codes = classes.map(([name, cls]) => [name, codeOf(cls)] as const);
    for (const [name, code] of codes) {
      expect(`${name}: ${code}`).toMatch(/^\w+: TM_[A-Z_]+$/);
      if (name !== 'TransactionalMessageError') expect(`${name}: ${code}`).not.toBe(`${name}: TM_ERROR`);
    }
    expect(new Set(codes.map(([, code]) => code)).size).toBe(codes.length);
  });

  it('are on every instance', () => {
    expect(new api.MessageNotFoundError('x').code).toBe('TM_MESSAGE_NOT_FOUND');
    expect(new api.InvalidModuleOptionsError('relay.leaseMs', -1, 'a positive number').code).toBe(api.InvalidModuleOptionsError.code);
    expect(new TransactionalMessageError('x').code).toBe('TM_ERROR');
    expect(new api.MessageNotFoundError('x')).toBeInstanceOf(TransactionalMessageError);
  });
});
