import type { Kafka, KafkaConfig, Message, Producer } from 'kafkajs';
import { OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../message-publisher.interface.js';
import { classifyKafkaError } from './classify-kafka-error.js';
import type { KafkaOptions } from './kafka-options.interface.js';
import { ProducerSlot } from './producer-slot.js';
import { kafkaLogBridge } from './kafka-log-bridge.js';

/** The part of the kafkajs module used here. */
interface KafkaJsModule {
  Kafka: new (config: KafkaConfig) => Kafka;
  Partitioners: { DefaultPartitioner: NonNullable<Parameters<Kafka['producer']>[0]>['createPartitioner'] };
}

let kafkajs: Promise<KafkaJsModule> | undefined;

/** @internal Loads kafkajs, an optional peer: OptionalDependencyMissingError when it is not installed. */
export function loadKafkaJs(): Promise<KafkaJsModule> {
  kafkajs ??= import('kafkajs').then(
    (module) => ((module as { default?: KafkaJsModule }).default ?? module) as KafkaJsModule,
    (error: unknown) => {
      kafkajs = undefined;
      throw new OptionalDependencyMissingError('kafkajs', 'The Kafka publisher (the `kafka` option)', error);
    },
  );
  return kafkajs;
}

/**
 * @internal The Kafka publisher on kafkajs (`kafka.client: 'kafkajs'`; an optional peer
 * dependency, loaded on first use): an idempotent producer, acknowledgements from all in-sync
 * replicas, one request in flight per connection (so a retry cannot reorder a key), and one
 * `sendBatch` per publish. kafkajs' own retries are bounded: the relay retries with backoff.
 */
export class KafkaJsPublisher implements MessagePublisher {
  private readonly slot = new ProducerSlot<Producer>(() => this.start(), (producer) => producer.disconnect());

  /** `defaultClientId`: the client id when `options.clientId` is not given. */
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
    const byTopic = new Map<string, Message[]>();
    for (const message of messages) {
      let list = byTopic.get(message.topic);
      if (!list) byTopic.set(message.topic, (list = []));
      list.push({
        key: message.key,
        value: message.value,
        headers: { ...message.headers },
        timestamp: String(message.timestamp.getTime()),
      });
    }
    try {
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, topicMessages]) => ({ topic, messages: topicMessages })),
      });
    } catch (error) {
      // A fresh producer after any failure: after a transport failure kafkajs does not always
      // recover, and after a refused batch the idempotent producer's sequence numbers for that
      // partition no longer match the broker's (the next send would fail OUT_OF_ORDER_SEQUENCE_NUMBER).
      await this.slot.reset();
      throw error;
    }
  }

  classify(error: unknown): PublishFailure {
    if (error instanceof OptionalDependencyMissingError) return { kind: 'config' };
    return classifyKafkaError(error);
  }

  close(): Promise<void> {
    return this.slot.close();
  }

  private async start(): Promise<Producer> {
    const { Kafka, Partitioners } = await loadKafkaJs();
    const o = this.options;
    const kafka = new Kafka({
      ...kafkaLogBridge('TransactionalMessage:kafkajs'),
      // Bounded like the producer's: an unreachable broker fails a connect within seconds, and the
      // relay retries with its own backoff (kafkajs' default grows to 30 s per try).
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
      brokers: o.brokers,
      clientId: o.clientId ?? this.defaultClientId,
      ...(o.ssl !== undefined ? { ssl: o.ssl } : {}),
      ...(o.sasl !== undefined ? { sasl: o.sasl as KafkaConfig['sasl'] } : {}),
      ...(o.connectionTimeoutMs !== undefined ? { connectionTimeout: o.connectionTimeoutMs } : {}),
      ...(o.requestTimeoutMs !== undefined ? { requestTimeout: o.requestTimeoutMs } : {}),
      ...(o.authenticationTimeoutMs !== undefined ? { authenticationTimeout: o.authenticationTimeoutMs } : {}),
    });
    const producer = kafka.producer({
      // The Java client's murmur2 partitioner: a key lands on the same partition as with other clients.
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
    });
    try {
      await producer.connect();
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    return producer;
  }

}
