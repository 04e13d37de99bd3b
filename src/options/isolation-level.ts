import { InvalidMessageError } from '../errors/invalid-message.error.js';

/** Transaction isolation level, as TypeORM names it. Used only when a transaction is opened. */
export type IsolationLevel = 'READ UNCOMMITTED' | 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';

const LEVELS: ReadonlySet<string> = new Set(['READ UNCOMMITTED', 'READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE']);

/** @internal */
export function validateIsolationLevel(value: unknown, where: string): IsolationLevel | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !LEVELS.has(value)) {
    throw new InvalidMessageError('isolationLevel', value, [...LEVELS].map((l) => `'${l}'`).join(', '), where);
  }
  return value as IsolationLevel;
}
