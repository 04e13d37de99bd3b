/**
 * The `@nestjs/microservices` transports a ClientProxyPublisher sends over, and how each carries
 * the library's headers (`tm-message-id`, `tm-key`, `tm-tags`, ... and the user properties):
 *
 * - `rmq`: AMQP message headers (RmqRecord options), the message id as the AMQP `messageId`,
 *   persistent; the client's channel is a confirm channel: a publish resolves on the broker's ack.
 * - `nats`: NATS message headers (NatsRecord).
 * - `mqtt`: MQTT 5 user properties (MqttRecord), QoS 1 by default: a publish resolves on PUBACK.
 * - `redis`: Redis pub/sub has no headers: the data is an envelope `{ headers, body }`.
 */
export type ClientProxyTransport = 'rmq' | 'nats' | 'mqtt' | 'redis';

export const CLIENT_PROXY_TRANSPORTS: readonly ClientProxyTransport[] = ['rmq', 'nats', 'mqtt', 'redis'];

/** The class names of `@nestjs/microservices`' clients, by transport. */
const CLIENT_CLASSES: Record<string, ClientProxyTransport> = {
  ClientRMQ: 'rmq',
  ClientNats: 'nats',
  ClientMqtt: 'mqtt',
  ClientRedis: 'redis',
};

/**
 * @internal The transport of a Nest client, from its class (or the class it extends): `undefined`
 * when it is none of the four (a custom transport, TCP, gRPC, Kafka).
 */
export function transportOf(client: object): ClientProxyTransport | undefined {
  for (let proto = Object.getPrototypeOf(client); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const transport = CLIENT_CLASSES[(proto.constructor as { name?: string } | undefined)?.name ?? ''];
    if (transport) return transport;
  }
  return undefined;
}
