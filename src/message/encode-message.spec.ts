import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { MessageBodyNotSerializableError } from '../errors/message-body-not-serializable.error.js';
import { MessageTooLargeError } from '../errors/message-too-large.error.js';
import { BYTES_CONTENT_TYPE, encodeMessage, JSON_CONTENT_TYPE, MAX_DELAY_MS, validateDelay, validateTopic } from './encode-message.js';

const defaults = { producerGroup: 'shop', maxMessageBytes: 100, checkImmunityMs: 10_000 };

describe('encodeMessage', () => {
  it('encodes a JSON body and fills the defaults', () => {
    const message = encodeMessage({ topic: 'order.paid', body: { a: 1 } }, defaults);
    expect(message).toMatchObject({
      producerGroup: 'shop',
      topic: 'order.paid',
      key: null,
      tags: [],
      properties: {},
      contentType: JSON_CONTENT_TYPE,
      checkImmunityMs: 10_000,
    });
    expect(message.body.toString()).toBe('{"a":1}');
    expect(message.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('keeps bytes as bytes', () => {
    const bytes = new Uint8Array([0, 1, 255]);
    const message = encodeMessage({ topic: 't', body: bytes }, defaults);
    expect(message.contentType).toBe(BYTES_CONTENT_TYPE);
    expect([...message.body]).toEqual([0, 1, 255]);
  });

  it('normalises tags to a de-duplicated list', () => {
    expect(encodeMessage({ topic: 't', body: 1, tags: 'paid' }, defaults).tags).toEqual(['paid']);
    expect(encodeMessage({ topic: 't', body: 1, tags: ['a', 'b', 'a'] }, defaults).tags).toEqual(['a', 'b']);
  });

  it.each([
    [{ topic: 't', body: 1, tags: ['a b'] }, /tags/],
    [{ topic: 't', body: 1, tags: [''] }, /tags/],
    [{ topic: 't', body: 1, key: '' }, /key ""/],
    [{ topic: 't', body: 1, properties: { 'TM-x': 'v' } }, /property name "TM-x"/],
    [{ topic: 't', body: 1, properties: { n: 1 } }, /property 'n' 1/],
    [{ topic: 't', body: 1, properties: ['x'] }, /properties \["x"\]/],
    [{ topic: 't', body: 1, checkImmunityMs: -1 }, /checkImmunityMs -1/],
    [{ topic: 't', body: 1, checkImmunityMs: 2 ** 31 }, /checkImmunityMs 2147483648/],
    [{ topic: 't', body: 1, key: 'a\u0000' }, /key .*without NUL/],
    [{ topic: 't', body: 1, key: '\udc00a' }, /key .*unpaired UTF-16 surrogates/],
    [{ topic: 't', body: 1, tags: ['x\u0000'] }, /tags/],
    [{ topic: 't', body: 1, tags: Array.from({ length: 9 }, (_, i) => String(i).repeat(128)) }, /at most 1024 characters in all/],
    [{ topic: 't', body: 1, properties: JSON.parse('{"__proto__":"v"}') }, /property name "__proto__"/],
    [{ topic: 't', body: 1, properties: { p: 'v\ud800' } }, /property 'p'/],
    [{ topic: 't', body: 1, properties: new Map() }, /properties/],
  ])('refuses %j', (input, expected) => {
    expect(() => encodeMessage(input as never, defaults)).toThrow(InvalidMessageError);
    expect(() => encodeMessage(input as never, defaults)).toThrow(expected);
  });

  it('accepts what is storable: paired surrogates (emoji), control characters other than NUL, 1024 characters of tags', () => {
    const message = encodeMessage(
      { topic: 't', body: 1, key: 'order-😀\t', tags: Array.from({ length: 8 }, (_, i) => String(i).repeat(127)), properties: { p: '😀' } },
      { ...defaults, maxMessageBytes: 10_000 },
    );
    expect(message.key).toBe('order-😀\t');
    expect(message.tags.join(',').length).toBe(1023);
  });

  it('refuses bodies without a JSON form', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const body of [10n, cyclic, undefined, () => 1, Symbol('s')]) {
      expect(() => encodeMessage({ topic: 't', body }, defaults)).toThrow(MessageBodyNotSerializableError);
    }
  });

  it('counts body, key, tags and properties against maxMessageBytes', () => {
    // body "x..." (2 quotes) = 92 bytes, key 4, tags 'ab' 2, property 'p'+'v' 2 = 100: allowed
    const fits = { topic: 't', body: 'x'.repeat(90), key: 'kkkk', tags: 'ab', properties: { p: 'v' } };
    expect(() => encodeMessage(fits, defaults)).not.toThrow();
    expect(() => encodeMessage({ ...fits, key: 'kkkkk' }, defaults)).toThrow(MessageTooLargeError);
    expect(() => encodeMessage({ ...fits, key: 'kkkkk' }, defaults)).toThrow(/is 101 bytes, over the limit of 100 bytes/);
  });

  it('counts multi-byte characters as bytes', () => {
    // 50 characters, but 2 quotes + 100 bytes of UTF-8.
    expect(() => encodeMessage({ topic: 't', body: 'é'.repeat(50) }, defaults)).toThrow(/is 102 bytes/);
    expect(() => encodeMessage({ topic: 't', body: 'é'.repeat(49) }, defaults)).not.toThrow();
  });
});

describe('validateTopic', () => {
  it.each(['order.paid', 'a', 'A_b-c.9', 'x'.repeat(249)])('accepts %s', (topic) => {
    expect(validateTopic(topic)).toBe(topic);
  });

  it.each(['', '.', '..', 'has space', 'x'.repeat(250), 'a/b', 'ü', 42, undefined])('refuses %p', (topic) => {
    expect(() => validateTopic(topic, 'somewhere')).toThrow(/Invalid message topic .* in somewhere: expected a Kafka topic name/);
  });
});

describe('validateDelay', () => {
  it('takes delayMs or deliverAt, not both; 0 or nothing is no delay', () => {
    expect(validateDelay(undefined, undefined)).toBeNull();
    expect(validateDelay(0, undefined)).toBeNull();
    expect(validateDelay(1_000, undefined)).toEqual({ delayMs: 1_000 });
    expect(validateDelay(MAX_DELAY_MS, null)).toEqual({ delayMs: MAX_DELAY_MS });
    const at = new Date(Date.now() + 60_000);
    const delay = validateDelay(undefined, at) as { at: Date };
    expect(delay.at.getTime()).toBe(at.getTime());
    expect(delay.at).not.toBe(at); // a copy: a later change of the caller's Date changes nothing
    // An instant already past is due at once, not an error.
    expect(validateDelay(undefined, new Date(0))).toEqual({ at: new Date(0) });
    expect(() => validateDelay(5, at)).toThrow(/either delayMs or deliverAt, not both/);
  });

  it.each([-1, 1.5, NaN, Infinity, MAX_DELAY_MS + 1, '100'])('refuses delayMs %p', (value) => {
    expect(() => validateDelay(value, undefined, 'OrderService.pay')).toThrow(/delayMs .* in OrderService.pay: expected a whole number of milliseconds from 0 to 31536000000 \(365 days\)/);
  });

  it.each([new Date('x'), '2030-01-01', 1_900_000_000_000, new Date(Date.now() + MAX_DELAY_MS + 60_000)])('refuses deliverAt %p', (value) => {
    expect(() => validateDelay(undefined, value)).toThrow(InvalidMessageError);
  });
});
