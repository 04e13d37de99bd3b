import { classifyClientProxyError, ClientProxyTimeoutError } from './classify-client-proxy-error.js';

describe('classifyClientProxyError', () => {
  it.each([
    // What the clients throw (messages as RabbitMQ, NATS, ioredis and mqtt.js word them).
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5672'), { code: 'ECONNREFUSED' }), { kind: 'transport' }],
    [new ClientProxyTimeoutError('Publishing message x', 30_000), { kind: 'transport' }],
    [new Error('Channel closed'), { kind: 'transport' }],
    [Object.assign(new Error('closed connection'), { code: 'CONNECTION_CLOSED' }), { kind: 'transport' }],
    [new Error('Connection is closed.'), { kind: 'transport' }],
    [new Error('client disconnecting'), { kind: 'transport' }],
    [new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"'), { kind: 'config' }],
    [Object.assign(new Error("'Authorization Violation'"), { code: 'AUTHORIZATION_VIOLATION' }), { kind: 'config' }],
    [new Error('WRONGPASS invalid username-password pair or user is disabled.'), { kind: 'config' }],
    [new Error('Connection refused: Not authorized'), { kind: 'config' }],
    [Object.assign(new Error('message size exceeds max payload'), { code: 'MAX_PAYLOAD_EXCEEDED' }), { kind: 'message', retriable: false }],
    [new Error('Message was nacked'), { kind: 'message', retriable: true }],
    [new TypeError("Cannot read properties of undefined (reading 'x')"), { kind: 'unknown' }],
  ])('%s', (error, expected) => {
    expect(classifyClientProxyError(error)).toEqual(expected);
  });
});
