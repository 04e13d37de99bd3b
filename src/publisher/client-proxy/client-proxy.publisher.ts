import { lastValueFrom, type Observable } from 'rxjs';
import { InvalidModuleOptionsError } from '../../errors/invalid-module-options.error.js';
import { isPackageNotInstalled, OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
import { JSON_CONTENT_TYPE } from '../../message/encode-message.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../message-publisher.interface.js';
import { classifyClientProxyError, ClientProxyTimeoutError } from './classify-client-proxy-error.js';
import { CLIENT_PROXY_TRANSPORTS, transportOf, type ClientProxyTransport } from './client-proxy-transport.js';

/** What a ClientProxyPublisher needs of a `@nestjs/microservices` client (`ClientProxy`). */
export interface EmittingClient {
  connect(): Promise<unknown>;
  emit<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput): Observable<TResult>;
  close(): unknown;
}

/** Options of {@link ClientProxyPublisher}. */
export interface ClientProxyPublisherOptions {
  /**
   * The client's transport, when its class does not tell (a subclass of your own with another
   * name). Default: from the client's class (`ClientRMQ`, `ClientNats`, `ClientMqtt`, `ClientRedis`).
   */
  transport?: ClientProxyTransport;
  /**
   * How long one connect or one message's publish may take before it counts as a transport failure
   * (the relay backs off and publishes it again). RabbitMQ's and MQTT's clients wait for a
   * reconnection instead of failing. Default 30,000 ms.
   */
  timeoutMs?: number;
  /** MQTT only: the QoS of the messages (1: acknowledged by the broker; 0: fire and forget). Default 1. */
  mqttQos?: 0 | 1 | 2;
}

/** The record builders of `@nestjs/microservices`, loaded on first use. */
type Microservices = typeof import('@nestjs/microservices');
/** What NATS headers are made with: `headers()` of `@nats-io/transport-node` (NestJS 12) or `nats` (NestJS 11). */
type NatsHeaders = { set(name: string, value: string): void };

/** How its option errors name it. */
const WHERE = ['ClientProxyPublisher', 'new ClientProxyPublisher(client, options)'] as const;

let microservices: Promise<Microservices> | undefined;
function loadMicroservices(): Promise<Microservices> {
  microservices ??= import('@nestjs/microservices').catch((error: unknown) => {
    microservices = undefined;
    throw new OptionalDependencyMissingError('@nestjs/microservices', 'ClientProxyPublisher', error);
  });
  return microservices;
}

const NATS_FEATURE = 'ClientProxyPublisher over NATS (the headers)';
let natsHeaders: Promise<() => NatsHeaders> | undefined;
function loadNatsHeaders(): Promise<() => NatsHeaders> {
  const load = async (name: string) => ((await import(name)) as { headers: () => NatsHeaders }).headers;
  natsHeaders ??= load('@nats-io/transport-node').catch((first: unknown) =>
    load('nats').catch((error: unknown) => {
      natsHeaders = undefined;
      // The package that is there and failed says more than the one that is not there.
      if (!isPackageNotInstalled(first, '@nats-io/transport-node')) throw new OptionalDependencyMissingError('@nats-io/transport-node', NATS_FEATURE, first);
      throw new OptionalDependencyMissingError(isPackageNotInstalled(error, 'nats') ? '@nats-io/transport-node' : 'nats', NATS_FEATURE, error);
    }),
  );
  return natsHeaders;
}

/**
 * Publishes committed messages over a `@nestjs/microservices` client (`ClientProxy.emit`): RabbitMQ,
 * NATS, MQTT or Redis. Pass it as the module's `publisher`:
 *
 * ```ts
 * TransactionalMessageModule.forRootAsync({
 *   imports: [ClientsModule.register([{ name: 'SHOP_EVENTS', transport: Transport.RMQ, options: { urls, queue: 'shop' } }])],
 *   inject: [DataSource, 'SHOP_EVENTS'],
 *   useFactory: (dataSource: DataSource, events: ClientProxy) => ({ dataSource, producerGroup: 'shop', publisher: new ClientProxyPublisher(events) }),
 * })
 * ```
 *
 * The topic is the event pattern; the data is the body (parsed JSON; raw bytes as a base64
 * string); the library's headers travel as the transport's headers (see ClientProxyTransport). The
 * messages of one key are sent one after the other, each once the one before was acknowledged, so
 * a failure never lets a later message of its key pass it; different keys go at once. Whether a
 * publish is acknowledged depends on the transport: see docs/guide.md, *Other transports*.
 */
export class ClientProxyPublisher implements MessagePublisher {
  readonly transport: ClientProxyTransport;
  private readonly timeoutMs: number;
  private readonly qos: 0 | 1 | 2;
  private builders: Microservices | undefined;
  private newNatsHeaders: (() => NatsHeaders) | undefined;

  constructor(
    private readonly client: EmittingClient,
    options: ClientProxyPublisherOptions = {},
  ) {
    if (!client || typeof client.emit !== 'function' || typeof client.connect !== 'function') {
      throw new InvalidModuleOptionsError('client', client, 'a ClientProxy of @nestjs/microservices (ClientsModule, ClientProxyFactory.create)', ...WHERE);
    }
    const transport = options.transport ?? transportOf(client);
    if (!transport || !CLIENT_PROXY_TRANSPORTS.includes(transport)) {
      throw new InvalidModuleOptionsError(
        'transport',
        options.transport ?? client.constructor?.name,
        `one of ${CLIENT_PROXY_TRANSPORTS.map((t) => `'${t}'`).join(', ')}: a ClientRMQ, ClientNats, ClientMqtt or ClientRedis, or { transport } for a subclass ` +
          `(Kafka goes through the module's kafka option; TCP and gRPC carry no headers)`,
        ...WHERE,
      );
    }
    this.transport = transport;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs < 1) {
      throw new InvalidModuleOptionsError('timeoutMs', options.timeoutMs, 'a whole number of milliseconds, at least 1', ...WHERE);
    }
    this.qos = options.mqttQos ?? 1;
    if (![0, 1, 2].includes(this.qos)) throw new InvalidModuleOptionsError('mqttQos', options.mqttQos, '0, 1 or 2', ...WHERE);
    if (transport === 'mqtt') {
      const version = (client as { options?: { protocolVersion?: number } }).options?.protocolVersion;
      if (version !== 5) {
        throw new InvalidModuleOptionsError(
          'client (ClientMqtt) protocolVersion',
          version,
          '5 (the message id, key and tags travel as MQTT 5 user properties)',
          'ClientProxyPublisher',
          'the client\'s options: ClientsModule.register([{ transport: Transport.MQTT, options: { url, protocolVersion: 5 } }])',
        );
      }
    }
  }

  async connect(): Promise<void> {
    this.builders ??= await loadMicroservices();
    if (this.transport === 'nats') this.newNatsHeaders ??= await loadNatsHeaders();
    // ClientRMQ rejects with amqp-connection-manager's disconnect event, { err, url }: the error is its err.
    const connecting = this.client.connect().catch((error: unknown) => {
      const inner = (error as { err?: unknown } | null)?.err;
      throw inner instanceof Error ? inner : error;
    });
    await within(connecting, this.timeoutMs, 'Connecting the client');
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    // One chain per key, in order; a message without a key is a chain of its own.
    const chains = new Map<string, OutgoingMessage[]>();
    messages.forEach((message, i) => {
      const chain = message.key === null ? `\u0000${i}` : `${message.topic}\u0000${message.key}`;
      const messagesOfChain = chains.get(chain);
      if (messagesOfChain) messagesOfChain.push(message);
      else chains.set(chain, [message]);
    });
    const accepted = new Set<string>();
    const failures: unknown[] = [];
    await Promise.all(
      [...chains.values()].map(async (chain) => {
        for (const message of chain) {
          try {
            await this.send(message);
            accepted.add(message.id);
          } catch (error) {
            failures.push(error);
            return; // the rest of the key waits behind its failed message
          }
        }
      }),
    );
    // A NATS publish is only buffered: the flush's round trip says the server has them (if it
    // fails, none is known to have arrived: all are published again).
    if (this.transport === 'nats' && accepted.size > 0) await within(this.natsConnection().flush(), this.timeoutMs, 'Flushing to NATS');
    if (failures.length === 0) return;
    if (accepted.size === 0) throw failures[0];
    throw new PartialPublishError(accepted, failures[0], messages.length);
  }

  classify(error: unknown): PublishFailure {
    if (error instanceof PartialPublishError) return classifyClientProxyError(error.cause);
    if (error instanceof OptionalDependencyMissingError) return { kind: 'config' };
    return classifyClientProxyError(error);
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Emits one message and waits for what the transport acknowledges (see ClientProxyTransport). */
  private send(message: OutgoingMessage): Promise<unknown> {
    return within(lastValueFrom(this.client.emit(message.topic, this.record(message)), { defaultValue: undefined }), this.timeoutMs, `Publishing message ${message.id}`);
  }

  /** The emitted data, with the headers as the transport carries them. */
  private record(message: OutgoingMessage): unknown {
    const body = message.headers['tm-content-type'] === JSON_CONTENT_TYPE ? JSON.parse(message.value.toString('utf8')) : message.value.toString('base64');
    const b = this.builders!;
    switch (this.transport) {
      case 'rmq':
        return new b.RmqRecordBuilder(body).setOptions({ headers: { ...message.headers }, messageId: message.id, persistent: true }).build();
      case 'nats': {
        const headers = this.newNatsHeaders!();
        for (const [name, value] of Object.entries(message.headers)) headers.set(name, value);
        return new b.NatsRecordBuilder(body).setHeaders(headers).build();
      }
      case 'mqtt':
        return new b.MqttRecordBuilder(body).setQoS(this.qos).setProperties({ userProperties: { ...message.headers } }).build();
      case 'redis':
        return { headers: { ...message.headers }, body };
    }
  }

  private natsConnection(): { flush(): Promise<void> } {
    const unwrap = (this.client as { unwrap?: <T>() => T }).unwrap;
    if (typeof unwrap !== 'function') throw new Error('the NATS client has no unwrap(): NestJS 10 or later is needed');
    return unwrap.call(this.client) as { flush(): Promise<void> };
  }
}

/** `promise`, or a ClientProxyTimeoutError after `ms` (a later rejection of `promise` is then ignored, not left unhandled). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ClientProxyTimeoutError(what, ms)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
