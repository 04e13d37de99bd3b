import type { MessageRow } from '../store/message-row.js';
import type { OutgoingMessage } from './message-publisher.interface.js';
import {
  CONTENT_TYPE_HEADER,
  KEY_HEADER,
  MESSAGE_ID_HEADER,
  PRODUCER_GROUP_HEADER,
  TAGS_HEADER,
} from './message-headers.js';

/** @internal A stored message as the publisher sends it: user properties first, the library's headers win. */
export function toOutgoingMessage(row: MessageRow): OutgoingMessage {
  const headers: Record<string, string> = { ...row.properties };
  headers[MESSAGE_ID_HEADER] = row.id;
  headers[PRODUCER_GROUP_HEADER] = row.producerGroup;
  headers[CONTENT_TYPE_HEADER] = row.contentType;
  if (row.tags.length) headers[TAGS_HEADER] = row.tags.join(',');
  if (row.key !== null) headers[KEY_HEADER] = row.key;
  return { id: row.id, topic: row.topic, key: row.key, value: row.bodyBytes, headers, timestamp: row.createdAt };
}
