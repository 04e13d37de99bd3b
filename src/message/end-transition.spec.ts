import { endTransition } from './end-transition.js';
import { MessageStatus } from './message-status.enum.js';

describe('endTransition: ending a half message is idempotent and terminal', () => {
  it.each([
    [MessageStatus.HALF, 'COMMIT', { kind: 'apply', to: MessageStatus.COMMITTED }],
    [MessageStatus.HALF, 'ROLLBACK', { kind: 'apply', to: MessageStatus.ROLLED_BACK }],
    [MessageStatus.COMMITTED, 'COMMIT', { kind: 'noop' }],
    [MessageStatus.DELIVERED, 'COMMIT', { kind: 'noop' }],
    [MessageStatus.DEAD, 'COMMIT', { kind: 'noop' }],
    [MessageStatus.ROLLED_BACK, 'COMMIT', { kind: 'refuse' }],
    [MessageStatus.ROLLED_BACK, 'ROLLBACK', { kind: 'noop' }],
    [MessageStatus.COMMITTED, 'ROLLBACK', { kind: 'refuse' }],
    [MessageStatus.DELIVERED, 'ROLLBACK', { kind: 'refuse' }],
    [MessageStatus.DEAD, 'ROLLBACK', { kind: 'refuse' }],
    [MessageStatus.CHECK_EXHAUSTED, 'COMMIT', { kind: 'apply', to: MessageStatus.COMMITTED }],
    [MessageStatus.CHECK_EXHAUSTED, 'ROLLBACK', { kind: 'apply', to: MessageStatus.ROLLED_BACK }],
  ] as const)('%s + %s', (current, requested, expected) => {
    expect(endTransition(current, requested)).toEqual(expected);
  });
});
