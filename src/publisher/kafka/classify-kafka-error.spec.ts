import { classifyKafkaError } from './classify-kafka-error.js';

const protocol = (type: string, retriable: boolean) => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, retriable });
const wrapped = (cause: Error) => Object.assign(new Error(cause.message), { name: 'KafkaJSNonRetriableError', cause, retriable: false });
const retriesExceeded = (cause: Error) => Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause });

describe('classifyKafkaError', () => {
  it('the message itself: never retried', () => {
    expect(classifyKafkaError(wrapped(protocol('MESSAGE_TOO_LARGE', false)))).toEqual({ kind: 'message', retriable: false });
    expect(classifyKafkaError(protocol('INVALID_RECORD', false))).toEqual({ kind: 'message', retriable: false });
  });

  it('its topic (missing, not authorized): retried, so it can be fixed within the attempts', () => {
    expect(classifyKafkaError(retriesExceeded(protocol('UNKNOWN_TOPIC_OR_PARTITION', true)))).toEqual({ kind: 'message', retriable: true });
    expect(classifyKafkaError(wrapped(protocol('TOPIC_AUTHORIZATION_FAILED', false)))).toEqual({ kind: 'message', retriable: true });
  });

  it.each(['NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'REQUEST_TIMED_OUT', 'KAFKA_STORAGE_ERROR'])(
    'the cluster cannot take writes now (%s): an outage, never counted against the message',
    (type) => {
      expect(classifyKafkaError(retriesExceeded(protocol(type, true)))).toEqual({ kind: 'transport' });
      expect(classifyKafkaError(protocol(type, true))).toEqual({ kind: 'transport' });
    },
  );

  it.each(['COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR', 'COORDINATOR_LOAD_IN_PROGRESS', 'INVALID_TXN_STATE', 'TRANSACTION_COORDINATOR_FENCED', 'PRODUCER_FENCED'])(
    'a transaction coordinator moving, loading or fencing (%s, kafka.exactlyOnce): an outage, never counted against the message',
    (type) => {
      expect(classifyKafkaError(retriesExceeded(protocol(type, true)))).toEqual({ kind: 'transport' });
    },
  );

  it('transactions refused by an ACL: a configuration error', () => {
    expect(classifyKafkaError(wrapped(protocol('TRANSACTIONAL_ID_AUTHORIZATION_FAILED', false)))).toEqual({ kind: 'config' });
  });

  it("the producer's own state (sequence numbers, id): not the message's fault, a new producer fixes it", () => {
    expect(classifyKafkaError(wrapped(protocol('OUT_OF_ORDER_SEQUENCE_NUMBER', false)))).toEqual({ kind: 'transport' });
    expect(classifyKafkaError(protocol('UNKNOWN_PRODUCER_ID', true))).toEqual({ kind: 'transport' });
  });

  it('an unreachable broker: transport', () => {
    const connection = Object.assign(new Error('Connection error: connect ECONNREFUSED'), { name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' });
    expect(classifyKafkaError(retriesExceeded(connection))).toEqual({ kind: 'transport' });
    expect(classifyKafkaError(Object.assign(new Error('timeout'), { name: 'KafkaJSRequestTimeoutError' }))).toEqual({ kind: 'transport' });
  });

  it('a client configured wrongly (SASL, authorization of idempotent writes, TLS, versions): config', () => {
    expect(classifyKafkaError(protocol('ILLEGAL_SASL_STATE', false))).toEqual({ kind: 'config' });
    expect(classifyKafkaError(wrapped(protocol('CLUSTER_AUTHORIZATION_FAILED', false)))).toEqual({ kind: 'config' });
    expect(classifyKafkaError(Object.assign(new Error('SASL PLAIN authentication failed'), { name: 'KafkaJSSASLAuthenticationError' }))).toEqual({ kind: 'config' });
    const tls = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    expect(classifyKafkaError(retriesExceeded(Object.assign(new Error('Connection error'), { name: 'KafkaJSConnectionError', cause: tls })))).toEqual({ kind: 'config' });
  });

  it('anything else: unknown (retried and counted, never DEAD on its own)', () => {
    expect(classifyKafkaError(protocol('KAFKAJS_UNKNOWN_ERROR_CODE', false))).toEqual({ kind: 'unknown' });
    expect(classifyKafkaError(protocol('UNKNOWN', false))).toEqual({ kind: 'unknown' });
    expect(classifyKafkaError(new Error('anything else'))).toEqual({ kind: 'unknown' });
  });
});
