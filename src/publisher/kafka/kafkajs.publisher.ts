import type { Kafka, KafkaConfig, Message, Producer } from 'kafkajs';
import { OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../message-publisher.interface.js';
import { classifyKafkaError } from './classify-kafka-error.js';
import type { KafkaOptions } from './kafka-options.interface.js';
import { ProducerSlot } from './producer-slot.js';
import { kafkaLogBridge } from './kafka-log-bridge.js';

/** The part of the kafkajs module used here. */
interface KafkaJsModule {
  Kafka: new (config: KafkaConfig) => Kafka;
  Partitioners: { DefaultPartitioner: NonNullable<NonNullable<Parameters<Kafka['producer']>[0]>['createPartitioner']> };
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
  /** The partition kafkajs' partitioner chose for each record sent (read after a failed send). */
  private readonly partitionOf = new WeakMap<object, number>();

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
    const records: Message[] = [];
    for (const message of messages) {
      let list = byTopic.get(message.topic);
      if (!list) byTopic.set(message.topic, (list = []));
      const record: Message = {
        key: message.key,
        value: message.value,
        headers: { ...message.headers },
        timestamp: String(message.timestamp.getTime()),
      };
      list.push(record);
      records.push(record);
    }
    try {
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, topicMessages]) => ({ topic, messages: topicMessages })),
      });
    } catch (error) {
      try {
        // The broker answered, with an error for some partition: which of the others it wrote,
        // kafkajs does not say. Sent again one partition at a time by the same producer, a batch
        // the broker already wrote is recognised by its sequence numbers (kafkajs rewinds them
        // after a failed request) and acknowledged without being written twice.
        if (isBrokerAnswer(error)) await this.sendPerPartition(producer, messages, records, error);
        else throw error;
      } finally {
        // A fresh producer after any failure: after a transport failure kafkajs does not always
        // recover, and after a refused batch the idempotent producer's sequence numbers for that
        // partition no longer match the broker's (the next send would fail OUT_OF_ORDER_SEQUENCE_NUMBER).
        await this.slot.reset();
      }
    }
  }

  /**
   * After a failed send: each partition's records again, alone and in the order they were given;
   * resolves when every partition is now acknowledged, else rejects with what failed (a
   * PartialPublishError when some partitions were acknowledged).
   */
  private async sendPerPartition(producer: Producer, messages: readonly OutgoingMessage[], records: readonly Message[], error: unknown): Promise<void> {
    const groups = new Map<string, { topic: string; partition: number; indexes: number[] }>();
    for (let i = 0; i < records.length; i++) {
      const partition = this.partitionOf.get(records[i]);
      // A record kafkajs never placed (it failed before): nothing is known; the whole send failed.
      if (partition === undefined) throw error;
      const id = `${messages[i].topic}\u0000${partition}`;
      let group = groups.get(id);
      if (!group) groups.set(id, (group = { topic: messages[i].topic, partition, indexes: [] }));
      group.indexes.push(i);
    }
    if (groups.size < 2) throw error;
    const accepted = new Set<string>();
    let failure: unknown;
    for (const { topic, partition, indexes } of groups.values()) {
      try {
        await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages: indexes.map((i) => ({ ...records[i], partition })) }] });
        for (const i of indexes) accepted.add(messages[i].id);
      } catch (partitionError) {
        failure ??= partitionError;
      }
    }
    if (failure === undefined) return;
    if (accepted.size === 0) throw failure;
    throw new PartialPublishError(accepted, failure, messages.length);
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
    const kafka = new Kafka(kafkaJsConfig(this.options, this.defaultClientId));
    const producer = kafka.producer({
      // The Java client's murmur2 partitioner: a key lands on the same partition as with other clients.
      createPartitioner: () => {
        const partitioner = Partitioners.DefaultPartitioner();
        return (args) => {
          const partition = partitioner(args);
          this.partitionOf.set(args.message, partition);
          return partition;
        };
      },
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

/** @internal The kafkajs client's configuration from the `kafka` option (the publisher's and the transactional producer's). */
export function kafkaJsConfig(o: KafkaOptions, defaultClientId: string): KafkaConfig {
  return {
    ...kafkaLogBridge('TransactionalMessage:kafkajs'),
    // Bounded like the producer's: an unreachable broker fails a connect within seconds, and the
    // relay retries with its own backoff (kafkajs' default grows to 30 s per try).
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
    brokers: o.brokers,
    clientId: o.clientId ?? defaultClientId,
    ...(o.ssl !== undefined ? { ssl: o.ssl } : {}),
    ...(o.sasl !== undefined ? { sasl: o.sasl as KafkaConfig['sasl'] } : {}),
    ...(o.connectionTimeoutMs !== undefined ? { connectionTimeout: o.connectionTimeoutMs } : {}),
    ...(o.requestTimeoutMs !== undefined ? { requestTimeout: o.requestTimeoutMs } : {}),
    ...(o.authenticationTimeoutMs !== undefined ? { authenticationTimeout: o.authenticationTimeoutMs } : {}),
  };
}

/**
 * Whether the broker answered the request with an error code for a partition (kafkajs' protocol
 * error, possibly after its retries), rather than the request failing on the way (a connection
 * closed, a timeout): only then were the other partitions answered too.
 */
function isBrokerAnswer(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e = error as { name?: unknown; cause?: unknown } | undefined; e && typeof e === 'object' && !seen.has(e); e = e.cause as typeof e) {
    seen.add(e);
    if (e.name === 'KafkaJSProtocolError') return true;
  }
  return false;
}
