import type { PublishFailure } from '../message-publisher.interface.js';

/** A publish or connect that did not settle within the publisher's `timeoutMs`. */
export class ClientProxyTimeoutError extends Error {
  override readonly name = 'ClientProxyTimeoutError';

  constructor(what: string, ms: number) {
    super(`${what} did not settle within ${ms} ms (the broker is unreachable, or the client waits for a reconnection)`);
  }
}

/** Socket errors: the server cannot be reached now. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/** NATS error codes of a refused configuration (credentials, permissions). */
const CONFIG_CODES = new Set(['AUTHORIZATION_VIOLATION', 'PERMISSIONS_VIOLATION', 'AUTHENTICATION_EXPIRED', 'AUTHENTICATION_TIMEOUT', 'ACCOUNT_EXPIRED']);
/** NATS error codes of a message the server will never take. */
const MESSAGE_CODES = new Set(['MAX_PAYLOAD_EXCEEDED', 'BAD_PAYLOAD', 'BAD_SUBJECT', 'BAD_HEADER']);

/**
 * @internal Whose fault an error of a `@nestjs/microservices` client is (RabbitMQ through
 * amqp-connection-manager, NATS, Redis through ioredis, MQTT through mqtt.js): the clients throw
 * plain errors, so this reads their codes and messages. Refused credentials or permissions are
 * `config`; a payload over the server's limit is the message's fault (never retried); a broker's
 * nack is the message's, retried; a closed or unreachable connection, a timeout, is `transport`;
 * anything else `unknown` (retried, counted, never DEAD on its own).
 */
export function classifyClientProxyError(error: unknown): PublishFailure {
  if (error instanceof ClientProxyTimeoutError) return { kind: 'transport' };
  const e = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  const code = String(e.code ?? '');
  const text = `${String(e.name ?? '')} ${String(e.message ?? error ?? '')}`.toLowerCase();
  if (NETWORK_CODES.has(code)) return { kind: 'transport' };
  if (CONFIG_CODES.has(code) || /access.?refused|not.?authori[sz]ed|authori[sz]ation|permission|authentication|noauth|wrongpass|bad username or password/.test(text)) {
    return { kind: 'config' };
  }
  if (MESSAGE_CODES.has(code) || /max.?payload|too large|packet too large|exceeds? (the )?maximum/.test(text)) return { kind: 'message', retriable: false };
  if (/\bnack/.test(text)) return { kind: 'message', retriable: true };
  if (/connection|connect|disconnect|closed|closing|timeout|timed out|offline|socket|stream isn't writeable|reconnect/.test(text)) return { kind: 'transport' };
  return { kind: 'unknown' };
}
