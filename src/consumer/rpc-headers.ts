/** What the library reads of a `@nestjs/microservices` context, whatever its transport. */
interface AnyRpcContext {
  getMessage?: () => { headers?: Record<string, unknown>; properties?: { headers?: Record<string, unknown> } } | undefined;
  getHeaders?: () => { keys(): Iterable<string>; get(name: string): string } | undefined;
  getPacket?: () => { properties?: { userProperties?: Record<string, unknown> } } | undefined;
  getChannelRef?: () => unknown;
  getChannel?: () => string;
  getTopic?: () => string;
  getSubject?: () => string;
  getPattern?: () => string;
}

/**
 * @internal The envelope a ClientProxyPublisher sends over Redis (pub/sub has no headers):
 * `{ headers, body }` with the library's message id among the headers.
 */
export function isRedisEnvelope(data: unknown): data is { headers: Record<string, unknown>; body: unknown } {
  const headers = (data as { headers?: unknown } | null)?.headers;
  return typeof headers === 'object' && headers !== null && 'tm-message-id' in headers && 'body' in (data as object);
}

/**
 * @internal The headers of the message a handler is handling, on any transport: Kafka record
 * headers, RabbitMQ message headers, NATS headers, MQTT 5 user properties, or the envelope of a
 * Redis message (`data`).
 */
export function rpcHeaders(rpc: unknown, data?: unknown): Record<string, unknown> {
  if (!rpc || typeof rpc !== 'object') return {};
  const c = rpc as AnyRpcContext;
  if (typeof c.getHeaders === 'function') {
    const headers = c.getHeaders();
    const result: Record<string, unknown> = {};
    if (headers && typeof headers.keys === 'function') for (const name of headers.keys()) result[name] = headers.get(name);
    return result;
  }
  if (typeof c.getPacket === 'function') return c.getPacket()?.properties?.userProperties ?? {};
  if (typeof c.getChannelRef === 'function') return c.getMessage?.()?.properties?.headers ?? {};
  if (typeof c.getChannel === 'function') return isRedisEnvelope(data) ? data.headers : {};
  return c.getMessage?.()?.headers ?? {};
}

/** @internal The topic, subject, channel or pattern the message came on (for tracing). */
export function rpcTopic(rpc: unknown): string | undefined {
  if (!rpc || typeof rpc !== 'object') return undefined;
  const c = rpc as AnyRpcContext;
  return c.getTopic?.() ?? c.getSubject?.() ?? c.getChannel?.() ?? c.getPattern?.();
}
