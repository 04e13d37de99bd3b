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
  deliveredAt: Date | null;
}
