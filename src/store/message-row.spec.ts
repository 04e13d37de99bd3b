import { DeliveryRow, publicMessage, toStoredMessage } from './message-row.js';

describe('DeliveryRow', () => {
  const raw = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    seq: '42',
    id: '01a24880-959e-70f0-9a41-5940da3ba674',
    producer_group: 'shop',
    topic: 'order.paid',
    message_key: 'order-7',
    tags: 'paid,vip',
    properties: '{"source":"test"}',
    body: Buffer.from('{"orderId":"order-7","amount":3}'),
    content_type: 'application/json',
    status: 'COMMITTED',
    check_immunity_ms: '10000',
    check_count: '2',
    delivery_attempts: '1',
    last_error: 'broker said no',
    created_at: '2026-12-05 23:07:53.123',
    ...over,
  });

  it.each([
    ['a keyed JSON message with tags, properties and an error', {}],
    ['a keyless raw message without tags, properties or error', { message_key: null, tags: null, properties: null, last_error: null, content_type: 'application/octet-stream', body: Buffer.from([0, 255, 7]) }],
  ])('holds what toStoredMessage reads from the same row: %s', (_name, over) => {
    const row = raw(over);
    const lean = new DeliveryRow(row);
    const full = toStoredMessage(row);
    expect(publicMessage(lean)).toEqual(publicMessage(full));
    expect(lean.seq).toBe(42);
    expect(lean.body).toEqual(full.body);
    expect(lean.body).toBe(lean.body); // decoded once
  });

  it('decodes the body on first use only', () => {
    const lean = new DeliveryRow(raw({ body: Buffer.from('not json') }));
    expect(lean.bodyBytes.toString()).toBe('not json'); // the relay reads the bytes; nothing is parsed
    expect(() => lean.body).toThrow(SyntaxError);
  });
});
