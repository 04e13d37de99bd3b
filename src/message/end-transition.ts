import { COMMITTED_STATUSES, MessageStatus } from './message-status.enum.js';

/** @internal What ending a half message's transaction does, given the status it has now. */
export type EndTransition =
  | { kind: 'apply'; to: MessageStatus.COMMITTED | MessageStatus.ROLLED_BACK }
  | { kind: 'noop' }
  | { kind: 'refuse' };

/**
 * @internal Ending is idempotent and terminal: only a HALF message changes; asking again for the
 * outcome it already has is a no-op; asking for the opposite outcome is refused (RocketMQ accepts a
 * second, contradicting end; we do not).
 */
export function endTransition(current: MessageStatus, requested: 'COMMIT' | 'ROLLBACK'): EndTransition {
  // A parked message (checks exhausted) is still undecided: an operator ends it like a half message.
  if (current === MessageStatus.HALF || current === MessageStatus.CHECK_EXHAUSTED) {
    return { kind: 'apply', to: requested === 'COMMIT' ? MessageStatus.COMMITTED : MessageStatus.ROLLED_BACK };
  }
  const committed = COMMITTED_STATUSES.has(current);
  if (requested === 'COMMIT') return committed ? { kind: 'noop' } : { kind: 'refuse' };
  return current === MessageStatus.ROLLED_BACK ? { kind: 'noop' } : { kind: 'refuse' };
}
