import type { OutgoingMessage } from '../../publisher/message-publisher.interface.js';
import type { MessageRow } from '../../store/message-row.js';

/** @internal A batch of committed messages claimed for publishing, under one lease token. */
export interface DeliveryClaim {
  token: string;
  /** In seq order; the messages of one key form an unbroken prefix of that key's queue. */
  messages: MessageRow[];
  /** The claim walked the whole queue: the oldest messages had nothing to claim. */
  scannedAll?: boolean;
  /** When the claim's hold was last confirmed in the database (performance.now()), if before the claim. */
  confirmedAt?: number;
  /**
   * The relay's cache of what it builds from each message once: the record it publishes and that
   * record's size. Lives and dies with the claim (measured against a `WeakMap` per row: bench/RESULTS.md).
   */
  records?: Map<MessageRow, { message: OutgoingMessage; bytes: number }>;
}

/**
 * @internal How relays share committed messages (key buckets, BucketOwnership): what the relay
 * reads, how it confirms a batch is still its own, and how it records the outcome. The relay's
 * loop (pipelining, byte-bounded requests, isolating a failing message, backoff, shutdown) is
 * DeliveryRelay's.
 */
export interface DeliveryOwnership {
  /**
   * The next batch of committed messages this relay may publish, in seq order. `force`: maintain
   * the key buckets now (`drain()`).
   */
  claim(force: boolean): Promise<DeliveryClaim>;
  /**
   * Messages of `claim` not to publish now after all (a key a failure held back since the claim
   * was read); the relay gives them back.
   */
  heldBack(claim: DeliveryClaim): MessageRow[];
  /**
   * Messages of `claim` this relay decided not to publish now (in memory, at once); `release`
   * follows when the claim is finished.
   */
  letGo(claim: DeliveryClaim, rows: readonly MessageRow[]): void;
  /** Extends the claim's hold on `seqs` and returns those still this relay's to publish. */
  renew(claim: DeliveryClaim, seqs: number[]): Promise<Set<number>>;
  /** Marks published messages DELIVERED; returns how many were still this relay's. */
  markDelivered(claim: DeliveryClaim, seqs: number[]): Promise<number>;
  /** Counts a failed attempt (retry after `retryInMs`, or DEAD); false when not this relay's anymore. */
  markFailed(claim: DeliveryClaim, row: MessageRow, error: string, dead: boolean, retryInMs: number): Promise<boolean>;
  /** Gives messages back without counting an attempt. */
  release(claim: DeliveryClaim, seqs: number[]): Promise<number>;
  /** The relay stopped (nothing in flight anymore): give back what it holds. */
  stop(): Promise<void>;
}

/** @internal The messages of `claim` with the given seqs. */
export function rowsOf(claim: DeliveryClaim, seqs: readonly number[]): MessageRow[] {
  const wanted = new Set(seqs);
  return claim.messages.filter((r) => wanted.has(r.seq));
}
