import { InvalidModuleOptionsError } from '../../errors/invalid-module-options.error.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure } from '../message-publisher.interface.js';
import { DEFAULT_KAFKA_CLIENT, KAFKA_CLIENTS, type KafkaOptions } from './kafka-options.interface.js';
import { KafkaJsPublisher } from './kafkajs.publisher.js';
import { PlatformaticKafkaPublisher } from './platformatic.publisher.js';

/**
 * Publishes to Apache Kafka: the module's `kafka` option, or `new KafkaPublisher(options)` as a
 * `publisher` of your own. One contract whichever client `options.client` names (each an
 * optional peer dependency, loaded on first use): an idempotent producer, acknowledgements from
 * all in-sync replicas, one request in flight per connection (a retry cannot reorder a key), one
 * request per publish, the Java client's partitioner for keyed records, bounded client retries
 * (the relay retries with backoff), a fresh producer after any failure, and errors classified as
 * the relay needs them (transport, configuration, the message's fault, unknown).
 */
export class KafkaPublisher implements MessagePublisher {
  private readonly client: MessagePublisher;

  /** `defaultClientId`: the client id when `options.clientId` is not given. */
  constructor(options: KafkaOptions, defaultClientId = 'nestjs-transactional-message') {
    const client = options.client ?? DEFAULT_KAFKA_CLIENT;
    if (!(KAFKA_CLIENTS as readonly string[]).includes(client)) {
      throw new InvalidModuleOptionsError('kafka.client', client, `one of ${KAFKA_CLIENTS.map((c) => `'${c}'`).join(', ')} (installed in your app)`);
    }
    this.client = client === '@platformatic/kafka' ? new PlatformaticKafkaPublisher(options, defaultClientId) : new KafkaJsPublisher(options, defaultClientId);
  }

  connect(): Promise<void> {
    return this.client.connect();
  }

  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    return this.client.publish(messages);
  }

  classify(error: unknown): PublishFailure {
    return this.client.classify(error);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
