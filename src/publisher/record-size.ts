import type { OutgoingMessage } from './message-publisher.interface.js';

/**
 * Bytes a Kafka record costs in a produce request besides its key, value and headers (length
 * varints, attributes, timestamp and offset deltas), rounded up.
 */
const RECORD_OVERHEAD_BYTES = 32;

/** @internal About what `message` costs on the wire: key, value, header names and values, record overhead. */
export function recordBytes(message: OutgoingMessage): number {
  let size = RECORD_OVERHEAD_BYTES + message.value.byteLength + (message.key === null ? 0 : Buffer.byteLength(message.key));
  for (const [name, value] of Object.entries(message.headers)) size += Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
  return size;
}

/**
 * @internal How many of `messages`, from the first, fit in `maxBytes` together. At least one: a
 * message larger than the limit goes alone (its size was checked against `maxMessageBytes` when it
 * was written).
 */
export function countWithinBytes<T>(messages: readonly T[], maxBytes: number, sizeOf: (message: T) => number): number {
  let total = 0;
  let count = 0;
  for (const message of messages) {
    total += sizeOf(message);
    if (count > 0 && total > maxBytes) break;
    count++;
  }
  return count;
}
