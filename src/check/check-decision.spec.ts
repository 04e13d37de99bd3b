import { TransactionStatus } from '../message/transaction-status.enum.js';
import { decideCheck } from './check-decision.js';

const limits = { maxChecks: 3, intervalMs: 10_000, onExhausted: 'rollback' as const };

describe('decideCheck', () => {
  it('COMMIT and ROLLBACK end the half message, whatever the count', () => {
    expect(decideCheck(TransactionStatus.COMMIT, 3, limits)).toEqual({ kind: 'commit' });
    expect(decideCheck(TransactionStatus.ROLLBACK, 1, limits)).toEqual({ kind: 'rollback' });
  });

  it('UNKNOWN checks again after the interval until the last allowed check', () => {
    expect(decideCheck(TransactionStatus.UNKNOWN, 1, limits)).toEqual({ kind: 'again', inMs: 10_000 });
    expect(decideCheck(TransactionStatus.UNKNOWN, 2, limits)).toEqual({ kind: 'again', inMs: 10_000 });
  });

  it('UNKNOWN at the last allowed check applies onExhausted', () => {
    expect(decideCheck(TransactionStatus.UNKNOWN, 3, limits)).toEqual({
      kind: 'exhausted',
      park: false,
      reason: 'no decision after 3 checks (check.maxChecks)',
    });
    expect(decideCheck(TransactionStatus.UNKNOWN, 3, { ...limits, onExhausted: 'park' })).toMatchObject({ kind: 'exhausted', park: true });
  });
});
