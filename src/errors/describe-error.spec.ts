import { describeError } from './describe-error.js';

describe('describeError', () => {
  it('puts the protocol type first and follows causes without repeating', () => {
    const protocol = Object.assign(new Error('The request included a message larger than the max message size'), { type: 'MESSAGE_TOO_LARGE' });
    const wrapper = Object.assign(new Error('The request included a message larger than the max message size'), { cause: protocol });
    expect(describeError(wrapper)).toBe('MESSAGE_TOO_LARGE: The request included a message larger than the max message size');
    const retries = Object.assign(new Error('Number of retries exceeded'), { cause: new Error('Connection refused') });
    expect(describeError(retries)).toBe('Number of retries exceeded (caused by) Connection refused');
  });

  it('copes with non-errors and cycles', () => {
    expect(describeError('boom')).toBe('boom');
    const a: { message: string; cause?: unknown } = { message: 'a' };
    a.cause = a;
    expect(describeError(a)).toBe('a');
  });
});

describe('describeError on @platformatic/kafka errors', () => {
  it('follows an aggregate into its last error and names the protocol error', async () => {
    const { MultipleErrors, NetworkError, ProtocolError } = await import('@platformatic/kafka');
    const refused = new NetworkError('Connection to 127.0.0.1:1 failed.', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
    const attempts = new MultipleErrors('initProducerId failed 2 times.', [new MultipleErrors('Cannot connect to any broker.', [refused]), new MultipleErrors('Cannot connect to any broker.', [refused])]);
    expect(describeError(attempts)).toBe(
      'initProducerId failed 2 times. (caused by) Cannot connect to any broker. (caused by) Connection to 127.0.0.1:1 failed. (caused by) connect ECONNREFUSED 127.0.0.1:1',
    );
    const tooLarge = new MultipleErrors('Producing messages failed.', [new ProtocolError('MESSAGE_TOO_LARGE')]);
    expect(describeError(tooLarge)).toMatch(/^MESSAGE_TOO_LARGE: Producing messages failed\. \(caused by\) /);
  });
});
