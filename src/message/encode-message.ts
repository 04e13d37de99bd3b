import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { MessageBodyNotSerializableError } from '../errors/message-body-not-serializable.error.js';
import { MessageTooLargeError } from '../errors/message-too-large.error.js';
import type { MessageInput } from './message.interface.js';
import { uuidV7 } from './uuid-v7.js';

/** Content type of a JSON body. */
export const JSON_CONTENT_TYPE = 'application/json';
/** Content type of a raw-bytes body. */
export const BYTES_CONTENT_TYPE = 'application/octet-stream';

/** Header and property names starting with this prefix are reserved for the library. */
export const RESERVED_PROPERTY_PREFIX = 'tm-';

/** @internal A validated message, ready to be stored. */
export interface EncodedMessage {
  id: string;
  producerGroup: string;
  topic: string;
  key: string | null;
  tags: string[];
  properties: Record<string, string>;
  body: Buffer;
  contentType: typeof JSON_CONTENT_TYPE | typeof BYTES_CONTENT_TYPE;
  checkImmunityMs: number;
  /** When the message is due (a delayed message), or null: due as soon as it is committed. */
  delay: MessageDelay | null;
}

/**
 * @internal When a delayed message is due: `delayMs` after it is stored (by the database's clock),
 * or at the instant `at`.
 */
export type MessageDelay = { readonly delayMs: number } | { readonly at: Date };

/** The longest a message may be delayed: 365 days (RocketMQ's timer messages default to 3 days; cloud services allow up to 40). */
export const MAX_DELAY_MS = 365 * 86_400_000;

/** @internal What the module's options fix for every message. */
export interface MessageDefaults {
  producerGroup: string;
  maxMessageBytes: number;
  checkImmunityMs: number;
}

const TOPIC_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
const TAG_PATTERN = /^[^\s|,\u0000]{1,128}$/;
const MAX_KEY_LENGTH = 255;
/** The tags column holds the comma-joined tags (VARCHAR(1024) on PostgreSQL and MySQL). */
const MAX_TAGS_LENGTH = 1024;
const MAX_PROPERTY_NAME_LENGTH = 255;
/** A UTF-16 surrogate without its pair: no UTF-8 form, so the database or Kafka would store U+FFFD instead. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Property names that a plain object cannot hold as data. */
const FORBIDDEN_PROPERTY_NAMES = new Set(['__proto__']);

/**
 * @internal Whether `text` can be stored and sent as it is: no NUL (PostgreSQL text cannot hold
 * it) and no unpaired surrogate (it has no UTF-8 form and would be replaced).
 */
function storable(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

const STORABLE = 'without NUL characters or unpaired UTF-16 surrogates';
/** The largest value the int columns hold: about 24.8 days. */
export const MAX_DURATION_MS = 2_147_483_647;

/** @internal Throws InvalidMessageError unless `topic` is a valid Kafka topic name. */
export function validateTopic(topic: unknown, where?: string): string {
  if (typeof topic !== 'string' || !TOPIC_PATTERN.test(topic) || topic === '.' || topic === '..') {
    throw new InvalidMessageError(
      'topic',
      topic,
      "a Kafka topic name: 1-249 characters of letters, digits, '.', '_' or '-' (not '.' or '..')",
      where,
    );
  }
  return topic;
}

/** @internal */
export function validateKey(key: unknown, where?: string): string | null {
  if (key === undefined || key === null) return null;
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || !storable(key)) {
    throw new InvalidMessageError('key', key, `a non-empty string of at most ${MAX_KEY_LENGTH} characters ${STORABLE}, or no key`, where);
  }
  return key;
}

/** @internal */
export function validateTags(tags: unknown, where?: string): string[] {
  if (tags === undefined || tags === null) return [];
  const list = typeof tags === 'string' ? [tags] : tags;
  if (!Array.isArray(list) || !list.every((tag) => typeof tag === 'string' && TAG_PATTERN.test(tag) && storable(tag))) {
    throw new InvalidMessageError(
      'tags',
      tags,
      `a tag or an array of tags, each 1-128 characters without spaces, '|' or ',' and ${STORABLE}`,
      where,
    );
  }
  const unique = [...new Set(list as string[])];
  if (unique.join(',').length > MAX_TAGS_LENGTH) {
    throw new InvalidMessageError('tags', tags, `tags of at most ${MAX_TAGS_LENGTH} characters in all (joined with ',')`, where);
  }
  return unique;
}

/** @internal */
export function validateProperties(properties: unknown, where?: string): Record<string, string> {
  if (properties === undefined || properties === null) return {};
  if (typeof properties !== 'object' || Array.isArray(properties) || !isPlainObject(properties)) {
    throw new InvalidMessageError('properties', properties, 'a plain object of string values, e.g. { source: "web" }', where);
  }
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(properties)) {
    if (name.length === 0 || name.length > MAX_PROPERTY_NAME_LENGTH || !storable(name)) {
      throw new InvalidMessageError('property name', name, `1-${MAX_PROPERTY_NAME_LENGTH} characters ${STORABLE}`, where);
    }
    if (FORBIDDEN_PROPERTY_NAMES.has(name)) {
      throw new InvalidMessageError('property name', name, 'another name (it would be lost: a plain object cannot hold it as data)', where);
    }
    if (name.toLowerCase().startsWith(RESERVED_PROPERTY_PREFIX)) {
      throw new InvalidMessageError(
        'property name',
        name,
        `a name that does not start with '${RESERVED_PROPERTY_PREFIX}' (reserved for the library's headers)`,
        where,
      );
    }
    if (typeof value !== 'string' || !storable(value)) {
      throw new InvalidMessageError(`property '${name}'`, value, `a string ${STORABLE} (Kafka headers are UTF-8 strings; PostgreSQL cannot store NUL)`, where);
    }
    result[name] = value;
  }
  return result;
}

function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** @internal */
export function validateDurationMs(field: string, value: unknown, where?: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DURATION_MS) {
    throw new InvalidMessageError(field, value, `a whole number of milliseconds from 0 to ${MAX_DURATION_MS}`, where);
  }
  return value;
}

/** @internal Validates `delayMs`: a whole number of ms from 0 to MAX_DELAY_MS. */
export function validateDelayMs(value: unknown, where?: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DELAY_MS) {
    throw new InvalidMessageError('delayMs', value, `a whole number of milliseconds from 0 to ${MAX_DELAY_MS} (365 days)`, where);
  }
  return value;
}

/**
 * @internal Validates `deliverAt`: a valid Date at most 365 days ahead (by this process's clock; a
 * time in the past is due at once).
 */
export function validateDeliverAt(value: unknown, where?: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidMessageError('deliverAt', value, 'a valid Date (the instant from which the message may be published)', where);
  }
  if (value.getTime() - Date.now() > MAX_DELAY_MS) {
    throw new InvalidMessageError('deliverAt', value, 'a Date at most 365 days ahead (schedule anything later with a scheduler of your own)', where);
  }
  return new Date(value.getTime());
}

/**
 * @internal The delay of a message from its `delayMs` and `deliverAt` (at most one of them), or
 * null. `delayMs: 0` is no delay.
 */
export function validateDelay(delayMs: unknown, deliverAt: unknown, where?: string): MessageDelay | null {
  const hasDelay = delayMs !== undefined && delayMs !== null;
  const hasAt = deliverAt !== undefined && deliverAt !== null;
  if (hasDelay && hasAt) {
    throw new InvalidMessageError('delay', { delayMs, deliverAt }, 'either delayMs or deliverAt, not both', where);
  }
  if (hasAt) return { at: validateDeliverAt(deliverAt, where) };
  if (!hasDelay) return null;
  const ms = validateDelayMs(delayMs, where);
  return ms === 0 ? null : { delayMs: ms };
}

/** @internal Serialises a body: bytes stay bytes, everything else becomes JSON. */
export function encodeBody(topic: string, body: unknown): Pick<EncodedMessage, 'body' | 'contentType'> {
  let bytes: boolean;
  try {
    bytes = body instanceof Uint8Array;
  } catch (error) {
    // A revoked Proxy throws on any look at it.
    throw new MessageBodyNotSerializableError(topic, (error as Error)?.message ?? String(error));
  }
  if (bytes) {
    const raw = body as Uint8Array;
    return { body: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), contentType: BYTES_CONTENT_TYPE };
  }
  if (body === undefined) {
    throw new MessageBodyNotSerializableError(
      topic,
      'the body is undefined (set the `body` option, call currentHalfMessage().setBody(), or return a value)',
    );
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (error) {
    throw new MessageBodyNotSerializableError(topic, (error as Error).message);
  }
  if (json === undefined) {
    throw new MessageBodyNotSerializableError(topic, `a ${typeof body} has no JSON form`);
  }
  return { body: Buffer.from(json, 'utf8'), contentType: JSON_CONTENT_TYPE };
}

/** @internal Validates and encodes a message; throws before anything is stored. */
export function encodeMessage(input: MessageInput, defaults: MessageDefaults, where?: string, id: string = uuidV7()): EncodedMessage {
  if (input === null || typeof input !== 'object') {
    throw new InvalidMessageError('message', input, 'an object with at least a topic and a body', where);
  }
  const topic = validateTopic(input.topic, where);
  const key = validateKey(input.key, where);
  const tags = validateTags(input.tags, where);
  const properties = validateProperties(input.properties, where);
  const checkImmunityMs =
    input.checkImmunityMs === undefined
      ? defaults.checkImmunityMs
      : validateDurationMs('checkImmunityMs', input.checkImmunityMs, where);
  const delay = validateDelay(input.delayMs, input.deliverAt, where);
  const { body, contentType } = encodeBody(topic, input.body);
  const size = messageSize(body, key, tags, properties);
  if (size > defaults.maxMessageBytes) {
    throw new MessageTooLargeError(topic, size, defaults.maxMessageBytes);
  }
  return {
    id,
    producerGroup: defaults.producerGroup,
    topic,
    key,
    tags,
    properties,
    body,
    contentType,
    checkImmunityMs,
    delay,
  };
}

/** What the message costs on the wire, near enough: body, key, tags and property headers. */
function messageSize(body: Buffer, key: string | null, tags: string[], properties: Record<string, string>): number {
  let size = body.byteLength + (key ? Buffer.byteLength(key) : 0) + Buffer.byteLength(tags.join(','));
  for (const [name, value] of Object.entries(properties)) size += Buffer.byteLength(name) + Buffer.byteLength(value);
  return size;
}
