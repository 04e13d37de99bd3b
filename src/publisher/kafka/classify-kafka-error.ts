import type { PublishFailure } from '../message-publisher.interface.js';

/** Errors about the message itself, whatever kafkajs says about retrying them: never retried. */
const MESSAGE_FAULTS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'INVALID_TOPIC_EXCEPTION',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
]);

/**
 * About the message's topic, and fixable without touching the message (create the topic, grant
 * the ACL): retried with backoff, so an operator has `maxAttempts` backoffs to fix it.
 */
const TOPIC_FAULTS = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'TOPIC_AUTHORIZATION_FAILED', 'POLICY_VIOLATION']);

/**
 * The cluster cannot take writes now: a leader moving or missing, too few in-sync replicas, a
 * broker timing out or overloaded. An outage, not the messages' fault: however long it lasts,
 * it must not use up their attempts.
 */
const CLUSTER_FAULTS = new Set([
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
  'REQUEST_TIMED_OUT',
  'BROKER_NOT_AVAILABLE',
  'REPLICA_NOT_AVAILABLE',
  'NETWORK_EXCEPTION',
  'NOT_ENOUGH_REPLICAS',
  'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  'KAFKA_STORAGE_ERROR',
  'NOT_CONTROLLER',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'PREFERRED_LEADER_NOT_AVAILABLE',
  'ELIGIBLE_LEADERS_NOT_AVAILABLE',
  'REASSIGNMENT_IN_PROGRESS',
  'THROTTLING_QUOTA_EXCEEDED',
  'CONCURRENT_TRANSACTIONS',
  'OPERATION_NOT_ATTEMPTED',
  // The transaction coordinator (kafka.exactlyOnce) moving or loading its log.
  'COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
  'COORDINATOR_LOAD_IN_PROGRESS',
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
  'INVALID_TXN_STATE',
  'TRANSACTION_COORDINATOR_FENCED',
]);

/** The client is configured wrongly for this cluster: no message can get through until it is fixed. */
const CONFIG_FAULTS = new Set([
  'SASL_AUTHENTICATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'UNSUPPORTED_VERSION',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'SECURITY_DISABLED',
]);

/**
 * @internal What a Kafka protocol error (by its name, `MESSAGE_TOO_LARGE`, as every client spells
 * it) means for the relay; `undefined` for a name that says nothing here.
 */
export function classifyKafkaErrorName(name: string): PublishFailure | undefined {
  if (CONFIG_FAULTS.has(name)) return { kind: 'config' };
  if (MESSAGE_FAULTS.has(name)) return { kind: 'message', retriable: false };
  if (TOPIC_FAULTS.has(name)) return { kind: 'message', retriable: true };
  if (CLUSTER_FAULTS.has(name) || PRODUCER_STATE_FAULTS.has(name)) return { kind: 'transport' };
  return undefined;
}

/** @internal Node's TLS failures (a client passes them on as a connection error's cause or code): a configuration error. */
export const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(VERIFY|GET)_)/;

/** kafkajs errors that mean the broker cannot be reached or did not answer. */
const TRANSPORT_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSStaleTopicMetadataAssignment',
]);

/** kafkajs errors about the client's configuration. */
const CONFIG_ERRORS = new Set(['KafkaJSSASLAuthenticationError', 'KafkaJSServerDoesNotSupportApiKey']);

interface ErrorLike {
  name?: string;
  type?: string;
  code?: unknown;
  retriable?: boolean;
  cause?: unknown;
  originalError?: unknown;
}

/**
 * @internal Classifies a kafkajs error by what it means, walking its cause chain (kafkajs wraps the
 * protocol error in KafkaJSNonRetriableError / KafkaJSNumberOfRetriesExceeded). The first error
 * in the chain that says something decides; an error nothing in the chain explains is `unknown`.
 */
export function classifyKafkaError(error: unknown): PublishFailure {
  const chain: ErrorLike[] = [];
  for (let e = error as ErrorLike | undefined; e && typeof e === 'object' && !chain.includes(e); e = (e.cause ?? e.originalError) as ErrorLike) {
    chain.push(e);
  }
  // A TLS failure anywhere in the chain: kafkajs reports it as a connection error.
  if (chain.some((e) => typeof e.code === 'string' && TLS_CODE.test(e.code))) return { kind: 'config' };
  for (const e of chain) {
    const { type, name } = e;
    const byType = type ? classifyKafkaErrorName(type) : undefined;
    if (byType) return byType;
    if (name && CONFIG_ERRORS.has(name)) return { kind: 'config' };
    if (name && TRANSPORT_ERRORS.has(name)) return { kind: 'transport' };
  }
  return { kind: 'unknown' };
}
