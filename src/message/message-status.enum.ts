/**
 * Where a stored message is in its life:
 *
 * ```text
 * HALF ──commit──▶ COMMITTED ──published──▶ DELIVERED
 *  │ │               ▲     └──retries exhausted──▶ DEAD ──replay──▶ COMMITTED
 *  │ │   (delayed) ──┴─ due ── DELAYED                 └──discard──▶ DISCARDED
 *  │ └──rollback─▶ ROLLED_BACK
 *  └──checks exhausted, onExhausted 'park'──▶ CHECK_EXHAUSTED (an operator commits or rolls back)
 * ```
 *
 * A committed message with a delay (`delayMs`, `deliverAt`) is DELAYED until it is due, then
 * COMMITTED like any other.
 */
export enum MessageStatus {
  /** Stored, invisible to consumers; the local transaction's outcome is not known yet. */
  HALF = 'HALF',
  /** The local transaction committed; waiting for the relay to publish it. */
  COMMITTED = 'COMMITTED',
  /** The local transaction committed; a delayed message waiting for its due time (`deliverAt`), then COMMITTED. */
  DELAYED = 'DELAYED',
  /** The local transaction rolled back; never delivered. */
  ROLLED_BACK = 'ROLLED_BACK',
  /** Published to the broker and acknowledged. */
  DELIVERED = 'DELIVERED',
  /** Committed, but publishing failed more times than allowed; kept for an operator to replay. */
  DEAD = 'DEAD',
  /** Its checks ran out without an answer and `check.onExhausted` is 'park': an operator decides. */
  CHECK_EXHAUSTED = 'CHECK_EXHAUSTED',
  /** A DEAD message an operator gave up on: never delivered; its key goes on without it. */
  DISCARDED = 'DISCARDED',
}

/** @internal Statuses in which the local transaction counts as committed. */
export const COMMITTED_STATUSES: ReadonlySet<MessageStatus> = new Set([
  MessageStatus.COMMITTED,
  MessageStatus.DELAYED,
  MessageStatus.DELIVERED,
  MessageStatus.DEAD,
  MessageStatus.DISCARDED,
]);
