import type { MessageToProduce, Producer, ProducerOptions, SASLOptions } from '@platformatic/kafka';
import { OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../message-publisher.interface.js';
import { classifyPlatformaticKafkaError } from './classify-platformatic-error.js';
import type { KafkaOptions } from './kafka-options.interface.js';
import { ProducerSlot } from './producer-slot.js';

type Record_ = MessageToProduce<Buffer, Buffer, string, string>;
type PlatformaticModule = typeof import('@platformatic/kafka');

let platformatic: Promise<PlatformaticModule> | undefined;

/** @internal Loads @platformatic/kafka, an optional peer: OptionalDependencyMissingError when it is not installed. */
export function loadPlatformaticKafka(): Promise<PlatformaticModule> {
  platformatic ??= import('@platformatic/kafka').then(
    (module) => module,
    (error: unknown) => {
      platformatic = undefined;
      throw new OptionalDependencyMissingError('@platformatic/kafka', "The Kafka publisher with kafka.client '@platformatic/kafka'", error);
    },
  );
  return platformatic;
}

/** Serialisers that pass the relay's bytes and strings through as they are. */
const RAW = {
  key: (key?: Buffer) => key,
  value: (value?: Buffer) => value,
  headerKey: (key?: string) => (key === undefined ? undefined : Buffer.from(key)),
  headerValue: (value?: string) => (value === undefined ? undefined : Buffer.from(value)),
};

/**
 * @internal The Kafka publisher on `@platformatic/kafka` (`kafka.client: '@platformatic/kafka'`;
 * an optional peer dependency, loaded on first use): the same contract as the kafkajs one. An
 * idempotent producer, acknowledgements from all in-sync replicas (`acks: -1`), one request in
 * flight per connection, one `send` per publish, the Java client's partitioner for keyed records
 * (murmur2, positive: a key lands where other clients put it), round robin for keyless ones. Its
 * retries are bounded: the relay retries with backoff. After any failure the producer is replaced
 * (a refused batch leaves the idempotent producer's sequence numbers ahead of the broker's).
 */
export class PlatformaticKafkaPublisher implements MessagePublisher {
  private readonly slot = new ProducerSlot<Producer<Buffer, Buffer, string, string>>(() => this.start(), (producer) => producer.close(true));
  private readonly roundRobin = new Map<string, number>();

  constructor(
    private readonly options: KafkaOptions,
    private readonly defaultClientId = 'nestjs-transactional-message',
  ) {}

  connect(): Promise<void> {
    return this.slot.get().then(() => undefined);
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const producer = await this.slot.get();
    const records: Record_[] = messages.map((message) => ({
      topic: message.topic,
      ...(message.key !== null ? { key: Buffer.from(message.key) } : {}),
      value: message.value,
      headers: message.headers as Record<string, string>,
      timestamp: BigInt(message.timestamp.getTime()),
    }));
    try {
      await producer.send({ messages: records });
    } catch (error) {
      await this.slot.reset();
      throw error;
    }
  }

  classify(error: unknown): PublishFailure {
    if (error instanceof OptionalDependencyMissingError) return { kind: 'config' };
    return classifyPlatformaticKafkaError(error);
  }

  close(): Promise<void> {
    return this.slot.close();
  }

  private async start(): Promise<Producer<Buffer, Buffer, string, string>> {
    const { Producer, ProduceAcks, compatibilityPartitioner } = await loadPlatformaticKafka();
    const o = this.options;
    const brokers = typeof o.brokers === 'function' ? await o.brokers() : o.brokers;
    const requestTimeout = o.requestTimeoutMs ?? 30_000;
    const options: ProducerOptions<Buffer, Buffer, string, string> = {
      clientId: o.clientId ?? this.defaultClientId,
      bootstrapBrokers: brokers,
      idempotent: true,
      acks: ProduceAcks.ALL,
      maxInflights: 1,
      // The record's own partition when keyed (as every Java-compatible client computes it);
      // keyless records spread over the partitions in turn.
      partitioner: (message, key) => {
        if (key) return compatibilityPartitioner(message, key);
        const next = (this.roundRobin.get(message.topic) ?? -1) + 1;
        this.roundRobin.set(message.topic, next >= 0x7fffffff ? 0 : next);
        return next;
      },
      serializers: RAW,
      connectTimeout: o.connectionTimeoutMs ?? 1_000,
      requestTimeout,
      // How long the broker waits for the in-sync replicas before it answers REQUEST_TIMED_OUT:
      // within the client's own wait, so that the answer arrives.
      timeout: Math.max(1, Math.floor(requestTimeout / 2)),
      // Bounded like the kafkajs publisher's: 5 retries from 100 ms to 2 s; the relay backs off after.
      retries: 5,
      retryDelay: (_client, _operation, attempt) => Math.min(2_000, 100 * 2 ** (attempt - 1)),
      // As kafkajs and the Java client do: the broker's auto.create.topics.enable decides.
      autocreateTopics: true,
      ...(o.ssl !== undefined && o.ssl !== false ? { tls: o.ssl === true ? {} : o.ssl } : {}),
      ...(o.sasl !== undefined ? { sasl: saslOptions(o.sasl) } : {}),
    };
    const producer = new Producer<Buffer, Buffer, string, string>(options);
    try {
      // Connects, authenticates and gets a producer id: a configuration error shows here, at boot.
      await producer.initIdempotentProducer({});
    } catch (error) {
      await producer.close(true).catch(() => undefined);
      throw error;
    }
    return producer;
  }

}

function saslOptions(sasl: NonNullable<KafkaOptions['sasl']>): SASLOptions {
  if (sasl.mechanism === 'oauthbearer') {
    const provider = sasl.oauthBearerProvider;
    return { mechanism: 'OAUTHBEARER', token: async () => (await provider()).value };
  }
  const mechanism = sasl.mechanism === 'plain' ? 'PLAIN' : sasl.mechanism === 'scram-sha-256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-512';
  return { mechanism, username: sasl.username, password: sasl.password };
}
