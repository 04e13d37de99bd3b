import { classifyKafkaError } from './classify-kafka-error.js';

const protocol = (type: string, retriable: boolean) => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, retriable });
const wrapped = (cause: Error) => Object.assign(new Error(cause.message), { name: 'KafkaJSNonRetriableError', cause, retriable: false });

describe('classifyKafkaError', () => {
  it('the message itself: never retried', () => {
    expect(classifyKafkaError(wrapped(protocol('MESSAGE_TOO_LARGE', false)))).toEqual({ kind: 'message', retriable: false });
    expect(classifyKafkaError(protocol('INVALID_RECORD', false))).toEqual({ kind: 'message', retriable: false });
  });

  it("the producer's own state (sequence numbers, id): not the message's fault, a new producer fixes it", () => {
    expect(classifyKafkaError(wrapped(protocol('OUT_OF_ORDER_SEQUENCE_NUMBER', false)))).toEqual({ kind: 'transport' });
    expect(classifyKafkaError(protocol('UNKNOWN_PRODUCER_ID', true))).toEqual({ kind: 'transport' });
  });

  it('an unreachable broker: transport', () => {
    const connection = Object.assign(new Error('Connection error: connect ECONNREFUSED'), { name: 'KafkaJSConnectionError' });
    const retries = Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: connection });
    expect(classifyKafkaError(retries)).toEqual({ kind: 'transport' });
    expect(classifyKafkaError(Object.assign(new Error('timeout'), { name: 'KafkaJSRequestTimeoutError' }))).toEqual({ kind: 'transport' });
  });

  it('other protocol errors: the message, retried unless kafkajs says it cannot succeed', () => {
    expect(classifyKafkaError(protocol('NOT_LEADER_FOR_PARTITION', true))).toEqual({ kind: 'message', retriable: true });
    expect(classifyKafkaError(protocol('SOMETHING_PERMANENT', false))).toEqual({ kind: 'message', retriable: false });
    expect(classifyKafkaError(new Error('anything else'))).toEqual({ kind: 'message', retriable: true });
  });
});
