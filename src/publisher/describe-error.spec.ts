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
