import { Kafka, Partitioners, type KafkaConfig, type Message, type Producer } from 'kafkajs';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../message-publisher.interface.js';
import { classifyKafkaError } from './classify-kafka-error.js';
import { kafkaLogBridge } from './kafka-log-bridge.js';

/**
 * Publishes to Apache Kafka with kafkajs: an idempotent producer, acknowledgements from all
 * in-sync replicas, one request in flight per connection (so a retry cannot reorder a key), and
 * one `sendBatch` per publish. kafkajs' own retries are bounded: the relay retries with backoff.
 */
export class KafkaPublisher implements MessagePublisher {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private closed = false;

  constructor(
    private readonly config: KafkaConfig,
    private readonly kafkaFactory: (config: KafkaConfig) => Kafka = (c) => new Kafka(c),
  ) {}

  connect(): Promise<void> {
    return this.ready().then(() => undefined);
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const producer = await this.ready();
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
      await this.reset();
      throw error;
    }
  }

  classify(error: unknown): PublishFailure {
    return classifyKafkaError(error);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }

  private ready(): Promise<Producer> {
    if (this.closed) return Promise.reject(new Error('KafkaPublisher is closed'));
    if (this.producer) return Promise.resolve(this.producer);
    if (!this.connecting) {
      const kafka = this.kafkaFactory({ logCreator: kafkaLogBridge('TransactionalMessage:kafkajs'), ...this.config });
      const producer = kafka.producer({
        // The Java client's murmur2 partitioner: a key lands on the same partition as with other clients.
        createPartitioner: Partitioners.DefaultPartitioner,
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
      });
      this.connecting = producer.connect().then(
        () => {
          this.producer = producer;
          this.connecting = undefined;
          return producer;
        },
        async (error) => {
          this.connecting = undefined;
          await producer.disconnect().catch(() => undefined);
          throw error;
        },
      );
    }
    return this.connecting;
  }

  private async reset(): Promise<void> {
    const producer = this.producer ?? (await this.connecting?.catch(() => undefined));
    this.producer = undefined;
    this.connecting = undefined;
    await producer?.disconnect().catch(() => undefined);
  }
}
