import {
  AuthenticationError,
  MultipleErrors,
  NetworkError,
  ProtocolError,
  ResponseError,
  TimeoutError,
  UnsupportedApiError,
  UserError,
} from '@platformatic/kafka';
import { classifyPlatformaticKafkaError as classify } from './classify-platformatic-error.js';

/** The shapes @platformatic/kafka throws, built with its own error classes. */
const attempts = (...errors: Error[]) => new MultipleErrors(`produce failed ${errors.length} times.`, errors);
const send = (...errors: Array<Error | null>) => new MultipleErrors('Producing messages failed.', errors as Error[]);
const protocol = (name: string) => new ProtocolError(name);

describe('classifyPlatformaticKafkaError', () => {
  it('reads the protocol error by its name, as the kafkajs classifier does', () => {
    expect(classify(send(protocol('MESSAGE_TOO_LARGE')))).toEqual({ kind: 'message', retriable: false });
    expect(classify(send(protocol('RECORD_LIST_TOO_LARGE')))).toEqual({ kind: 'message', retriable: false });
    expect(classify(send(protocol('TOPIC_AUTHORIZATION_FAILED')))).toEqual({ kind: 'message', retriable: true });
    expect(classify(send(attempts(protocol('NOT_ENOUGH_REPLICAS'), protocol('NOT_ENOUGH_REPLICAS'))))).toEqual({ kind: 'transport' });
    expect(classify(send(attempts(protocol('NOT_LEADER_OR_FOLLOWER'))))).toEqual({ kind: 'transport' });
    expect(classify(send(protocol('OUT_OF_ORDER_SEQUENCE_NUMBER')))).toEqual({ kind: 'transport' });
    expect(classify(protocol('CLUSTER_AUTHORIZATION_FAILED'))).toEqual({ kind: 'config' });
    expect(classify(new MultipleErrors('Cannot connect to any broker.', [protocol('ILLEGAL_SASL_STATE')]))).toEqual({ kind: 'config' });
  });

  it('finds the protocol errors inside a broker response', () => {
    const response = new ResponseError(0, 9, { '/responses/0/partitions/0': [10, 'too large'] }, {});
    expect(classify(send(response))).toEqual({ kind: 'message', retriable: false });
  });

  it('the last attempt of a retried request decides', () => {
    expect(classify(attempts(new NetworkError('Connection closed'), protocol('UNKNOWN_TOPIC_OR_PARTITION')))).toEqual({ kind: 'message', retriable: true });
    expect(classify(attempts(protocol('UNKNOWN_TOPIC_OR_PARTITION'), new NetworkError('Connection closed')))).toEqual({ kind: 'transport' });
  });

  it('of several destinations, the verdict that blames the messages least wins', () => {
    expect(classify(send(null, protocol('MESSAGE_TOO_LARGE'), new TimeoutError('Request timed out')))).toEqual({ kind: 'transport' });
    expect(classify(send(protocol('MESSAGE_TOO_LARGE'), protocol('UNKNOWN_TOPIC_OR_PARTITION')))).toEqual({ kind: 'message', retriable: true });
    expect(classify(send(new NetworkError('down'), new AuthenticationError('bad password')))).toEqual({ kind: 'config' });
  });

  it('network failures are transport, a TLS failure below one is configuration', () => {
    const refused = new NetworkError('Connection to 127.0.0.1:1 failed.', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    expect(classify(attempts(new MultipleErrors('Cannot connect to any broker.', [refused])))).toEqual({ kind: 'transport' });
    expect(classify(new TimeoutError('Connection to 127.0.0.1:9092 timed out.'))).toEqual({ kind: 'transport' });
    const tls = new NetworkError('Connection failed.', { cause: Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }) });
    expect(classify(attempts(tls))).toEqual({ kind: 'config' });
  });

  it('authentication and unsupported APIs are configuration; an unknown topic the broker will not create is the topic', () => {
    expect(classify(new AuthenticationError('SASL authentication failed.'))).toEqual({ kind: 'config' });
    expect(classify(new UnsupportedApiError('Unsupported API InitProducerId.'))).toEqual({ kind: 'config' });
    expect(classify(new UserError('Unknown topic orders.'))).toEqual({ kind: 'message', retriable: true });
  });

  it('anything else is unknown', () => {
    expect(classify(new Error('boom'))).toEqual({ kind: 'unknown' });
    expect(classify(new UserError('Failed to serialize a message.'))).toEqual({ kind: 'unknown' });
    expect(classify(undefined)).toEqual({ kind: 'unknown' });
    const cycle: { message: string; cause?: unknown } = { message: 'a' };
    cycle.cause = cycle;
    expect(classify(cycle)).toEqual({ kind: 'unknown' });
  });
});
