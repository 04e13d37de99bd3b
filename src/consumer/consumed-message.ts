import { JSON_CONTENT_TYPE, RESERVED_PROPERTY_PREFIX } from '../message/encode-message.js';
import {
  CONTENT_TYPE_HEADER,
  KEY_HEADER,
  MESSAGE_ID_HEADER,
  PRODUCER_GROUP_HEADER,
  TAGS_HEADER,
} from '../publisher/message-headers.js';

/** What a consumer knows about a transactional message, from its Kafka headers. */
export interface ConsumedMessage {
  /** The message id (`tm-message-id`); null when the record was not sent by this library. */
  readonly id: string | null;
  readonly producerGroup: string | null;
  readonly key: string | null;
  readonly tags: readonly string[];
  /** The user properties: every header not starting with `tm-`. */
  readonly properties: Readonly<Record<string, string>>;
  readonly contentType: string;
}

/** @internal A header's value as text, as kafkajs (Buffers) or `@nestjs/microservices` (decoded) give it. */
export function headerText(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.map((v) => headerText(v)).join(',');
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Reads the library's headers from a Kafka record's headers, as kafkajs (Buffers) or
 * `@nestjs/microservices`' KafkaContext (decoded strings, JSON-looking values parsed) give them.
 */
export function readConsumedMessage(headers: Readonly<Record<string, unknown>> | undefined | null): ConsumedMessage {
  const text = headerText;
  const all = headers ?? {};
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) {
    if (!name.toLowerCase().startsWith(RESERVED_PROPERTY_PREFIX)) {
      const v = text(value);
      if (v !== null) properties[name] = v;
    }
  }
  const tags = text(all[TAGS_HEADER]);
  return {
    id: text(all[MESSAGE_ID_HEADER]),
    producerGroup: text(all[PRODUCER_GROUP_HEADER]),
    key: text(all[KEY_HEADER]),
    tags: tags ? tags.split(',').filter(Boolean) : [],
    properties,
    contentType: text(all[CONTENT_TYPE_HEADER]) ?? JSON_CONTENT_TYPE,
  };
}
