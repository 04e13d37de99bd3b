import { TransactionStatus } from '../message/transaction-status.enum.js';
import type { CheckDecision } from '../store/check.store.js';

/** @internal The limits a check decision needs. */
export interface CheckLimits {
  maxChecks: number;
  intervalMs: number;
  onExhausted: 'rollback' | 'park';
}

/**
 * @internal What to do with a half message after check number `checkNumber` (1-based) answered
 * `answer`: COMMIT and ROLLBACK end it; UNKNOWN checks again after the interval, until the
 * `maxChecks`-th check, after which `onExhausted` applies.
 */
export function decideCheck(answer: TransactionStatus, checkNumber: number, limits: CheckLimits): CheckDecision {
  if (answer === TransactionStatus.COMMIT) return { kind: 'commit' };
  if (answer === TransactionStatus.ROLLBACK) return { kind: 'rollback' };
  if (checkNumber >= limits.maxChecks) {
    return {
      kind: 'exhausted',
      park: limits.onExhausted === 'park',
      reason: `no decision after ${checkNumber} checks (check.maxChecks)`,
    };
  }
  return { kind: 'again', inMs: limits.intervalMs };
}
