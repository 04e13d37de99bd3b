import { Logger } from '@nestjs/common';
import { LOGGER_CONTEXT } from '../../common/constants.js';
import { InvalidModuleOptionsError } from '../../errors/invalid-module-options.error.js';
import { OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure, SlotTransactions } from '../message-publisher.interface.js';
import { KAFKA_CLIENTS, type KafkaClientName, type KafkaOptions } from './kafka-options.interface.js';
import { ExactlyOnceKafkaPublisher, resolveExactlyOnceScope } from './exactly-once.publisher.js';
import { KafkaJsPublisher, loadKafkaJs } from './kafkajs.publisher.js';
import { loadPlatformaticKafka, PlatformaticKafkaPublisher } from './platformatic.publisher.js';

const FEATURE = 'The Kafka publisher (the `kafka` option)';

/**
 * @internal The client to use without `kafka.client`: @platformatic/kafka when it is installed,
 * else kafkajs; OptionalDependencyMissingError naming both when neither is. A client that is
 * installed and fails to load is that error, not a reason to take the other one.
 */
export async function installedKafkaClient(): Promise<KafkaClientName> {
  try {
    await loadPlatformaticKafka();
    return '@platformatic/kafka';
  } catch (platformatic) {
    if (!(platformatic instanceof OptionalDependencyMissingError) || platformatic.installed) throw platformatic;
  }
  try {
    await loadKafkaJs();
    return 'kafkajs';
  } catch (kafkajs) {
    if (!(kafkajs instanceof OptionalDependencyMissingError) || kafkajs.installed) throw kafkajs;
    throw new OptionalDependencyMissingError('@platformatic/kafka', FEATURE, kafkajs.cause, 'kafkajs');
  }
}

/**
 * Publishes to Apache Kafka: the module's `kafka` option, or `new KafkaPublisher(options)` as a
 * `publisher` of your own. One contract whichever client `options.client` names, or, without it,
 * whichever is installed (@platformatic/kafka first; each an optional peer dependency, loaded on
 * first use): an idempotent producer, acknowledgements from all in-sync replicas, one request in
 * flight per connection (a retry cannot reorder a key), one request per publish, the Java client's
 * partitioner for keyed records, bounded client retries (the relay retries with backoff), a fresh
 * producer after any failure, and errors classified as the relay needs them (transport,
 * configuration, the message's fault, unknown). With `options.exactlyOnce`, Kafka transactions
 * per slot of key buckets (docs/exactly-once.md).
 */
export class KafkaPublisher implements MessagePublisher {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private client: MessagePublisher | undefined;
  private choosing: Promise<MessagePublisher> | undefined;
  /** `options.exactlyOnce`: publishes, connects and classifies instead of `client`. */
  private readonly exactlyOnce: ExactlyOnceKafkaPublisher | undefined;

  /**
   * `defaultClientId`: the client id when `options.clientId` is not given. `scope`: the module's
   * producer group and table (the default names of `options.exactlyOnce`).
   */
  constructor(
    private readonly options: KafkaOptions,
    private readonly defaultClientId = 'nestjs-transactional-message',
    scope?: { producerGroup: string; tableName: string },
  ) {
    if (options.client !== undefined && !(KAFKA_CLIENTS as readonly string[]).includes(options.client)) {
      throw new InvalidModuleOptionsError('kafka.client', options.client, `one of ${KAFKA_CLIENTS.map((c) => `'${c}'`).join(', ')} (installed in your app)`);
    }
    if (options.client !== undefined) this.client = this.create(options.client);
    const names = resolveExactlyOnceScope(options.exactlyOnce, scope);
    if (names) this.exactlyOnce = new ExactlyOnceKafkaPublisher(options, () => this.chosen().then(() => this.clientName!), names, defaultClientId);
  }

  /** @internal With `exactlyOnce`: the slots the relay leases whole. */
  get slotTransactions(): SlotTransactions | undefined {
    return this.exactlyOnce;
  }

  /** The client this publisher runs on: `options.client`, or the one installed (known after the first connect). */
  get clientName(): KafkaClientName | undefined {
    return this.client instanceof PlatformaticKafkaPublisher ? '@platformatic/kafka' : this.client ? 'kafkajs' : undefined;
  }

  async connect(): Promise<void> {
    if (this.exactlyOnce) return this.exactlyOnce.connect();
    return (await this.chosen()).connect();
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.exactlyOnce) return this.exactlyOnce.publish(messages);
    return (await this.chosen()).publish(messages);
  }

  classify(error: unknown): PublishFailure {
    if (error instanceof OptionalDependencyMissingError) return { kind: 'config' };
    if (this.exactlyOnce) return this.exactlyOnce.classify(error);
    return this.client ? this.client.classify(error) : { kind: 'unknown' };
  }

  async close(): Promise<void> {
    await Promise.all([this.client?.close(), this.exactlyOnce?.close()]);
  }

  private chosen(): Promise<MessagePublisher> {
    if (this.client) return Promise.resolve(this.client);
    this.choosing ??= installedKafkaClient().then(
      (name) => {
        if (name === '@platformatic/kafka' && this.options.authenticationTimeoutMs !== undefined) {
          this.logger.warn('kafka.authenticationTimeoutMs is ignored: @platformatic/kafka (the installed client) has none; connectionTimeoutMs and requestTimeoutMs bound authentication');
        }
        this.logger.log(`Kafka client: ${name} (installed; kafka.client picks one)`);
        return (this.client = this.create(name));
      },
      (error: unknown) => {
        this.choosing = undefined;
        throw error;
      },
    );
    return this.choosing;
  }

  private create(client: KafkaClientName): MessagePublisher {
    return client === '@platformatic/kafka' ? new PlatformaticKafkaPublisher(this.options, this.defaultClientId) : new KafkaJsPublisher(this.options, this.defaultClientId);
  }
}
