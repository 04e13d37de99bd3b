import type { MessageStatus } from '../message/message-status.enum.js';

/** A message as the message table holds it. Times come from the database's clock. */
export interface StoredMessage {
  /** Message id (UUID v7), also sent as the `tm-message-id` header. */
  id: string;
  producerGroup: string;
  topic: string;
  key: string | null;
  tags: string[];
  properties: Record<string, string>;
  /** The body, decoded: parsed JSON, or a Buffer for raw bytes. */
  body: unknown;
  /** The body as stored. */
  bodyBytes: Buffer;
  contentType: string;
  status: MessageStatus;
  /** When the message was stored (born time). */
  createdAt: Date;
  /** When its local transaction was decided (commit or rollback); null while HALF. */
  transactionEndedAt: Date | null;
  checkImmunityMs: number;
  /** How many transaction checks have been made so far. */
  checkCount: number;
  /** When a HALF message is next due for a check. */
  nextCheckAt: Date | null;
  deliveryAttempts: number;
  nextAttemptAt: Date | null;
  lastError: string | null;
  /**
   * A delayed message's due time: it is not published before (by the database's clock). Null for a
   * message without a delay.
   */
  deliverAt: Date | null;
  deliveredAt: Date | null;
}

/** One transaction check of a half message, as recorded. */
export interface CheckAttempt {
  /** 1 for the first check of the message. */
  checkNumber: number;
  checkedAt: Date;
  /** What the check handler answered; UNKNOWN also when it threw, timed out or was missing. */
  result: 'COMMIT' | 'ROLLBACK' | 'UNKNOWN';
  /** Why the answer was UNKNOWN, when the handler did not say so itself. */
  error: string | null;
  durationMs: number;
  /** Which relay instance ran the check. */
  checker: string;
}
