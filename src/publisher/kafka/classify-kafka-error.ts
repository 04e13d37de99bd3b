import type { PublishFailure } from '../message-publisher.interface.js';

/** Errors about the message itself, whatever kafkajs says about retrying them. */
const MESSAGE_FAULTS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'INVALID_TOPIC_EXCEPTION',
  'CORRUPT_MESSAGE',
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
]);

/**
 * The idempotent producer's own state is off (its sequence numbers or id no longer match the
 * broker's, e.g. after a refused batch): nothing is wrong with the message. A new producer fixes it.
 */
const PRODUCER_STATE_FAULTS = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'DUPLICATE_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
  'PRODUCER_FENCED',
]);

/** kafkajs errors that mean the broker cannot be reached or did not answer. */
const TRANSPORT_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSNoBrokerAvailableError',
]);

interface ErrorLike {
  name?: string;
  type?: string;
  retriable?: boolean;
  cause?: unknown;
  originalError?: unknown;
}

/**
 * @internal Classifies a kafkajs error by walking its cause chain (kafkajs wraps the protocol
 * error in KafkaJSNonRetriableError / KafkaJSNumberOfRetriesExceeded).
 */
export function classifyKafkaError(error: unknown): PublishFailure {
  const seen = new Set<unknown>();
  let retriable = true;
  for (let e = error as ErrorLike | undefined; e && typeof e === 'object' && !seen.has(e); e = (e.cause ?? e.originalError) as ErrorLike) {
    seen.add(e);
    if (e.type && MESSAGE_FAULTS.has(e.type)) return { kind: 'message', retriable: false };
    if (e.type && PRODUCER_STATE_FAULTS.has(e.type)) return { kind: 'transport' };
    if (e.name && TRANSPORT_ERRORS.has(e.name)) return { kind: 'transport' };
    if (e.name === 'KafkaJSProtocolError' && e.retriable === false) retriable = false;
  }
  return { kind: 'message', retriable };
}
