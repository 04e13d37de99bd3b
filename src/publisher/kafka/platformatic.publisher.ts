import type { MessageToProduce, Producer, ProducerOptions, SASLOptions } from '@platformatic/kafka';
import { OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
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
      throw new OptionalDependencyMissingError('@platformatic/kafka', 'The Kafka publisher (the `kafka` option)', error);
    },
  );
  return platformatic;
}

/**
 * Header names as bytes, encoded once: the library's own five and the names of the messages'
 * properties, which repeat from message to message (bounded, should an application use a great
 * many different names).
 */
const headerNames = new Map<string, Buffer>();
const HEADER_NAMES_KEPT = 1_000;

function headerName(name: string): Buffer {
  let bytes = headerNames.get(name);
  if (bytes === undefined) {
    bytes = Buffer.from(name);
    if (headerNames.size < HEADER_NAMES_KEPT) headerNames.set(name, bytes);
  }
  return bytes;
}

/** Serialisers that pass the relay's bytes and strings through as they are. */
const RAW = {
  key: (key?: Buffer) => key,
  value: (value?: Buffer) => value,
  headerKey: (key?: string) => (key === undefined ? undefined : headerName(key)),
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
    const { compatibilityPartitioner } = await loadPlatformaticKafka();
    // Each record's partition is decided here, from the topics' metadata (cached by the client),
    // so that a failure can be told apart per partition: Kafka accepts or refuses each partition's
    // records as a whole, and answers for each.
    const metadata = await this.metadataOf(producer, messages);
    const records: Record_[] = messages.map((message) => {
      const partitions = metadata.topics.get(message.topic)!.partitionsCount;
      const record: Record_ = { topic: message.topic, value: message.value, headers: message.headers as Record<string, string>, timestamp: BigInt(message.timestamp.getTime()) };
      if (message.key !== null) {
        record.key = Buffer.from(message.key);
        // The Java client's partition for a keyed record.
        record.partition = compatibilityPartitioner(undefined as never, record.key) % partitions;
      } else {
        // Keyless ones spread over the partitions in turn.
        record.partition = this.nextRoundRobin(message.topic) % partitions;
      }
      return record;
    });
    try {
      await producer.send({ messages: records });
    } catch (error) {
      await this.slot.reset();
      const accepted = acceptedPartitions(error);
      if (accepted.size === 0) throw error;
      const ids = new Set(messages.filter((m, i) => accepted.has(`${m.topic}\u0000${records[i].partition}`)).map((m) => m.id));
      if (ids.size === 0) throw error;
      throw new PartialPublishError(ids, error, messages.length);
    }
  }

  /** The metadata of the topics of `messages` (from the client's cache when fresh; topics created as the broker allows). */
  private async metadataOf(producer: Producer<Buffer, Buffer, string, string>, messages: readonly OutgoingMessage[]) {
    const topics = [...new Set(messages.map((m) => m.topic))];
    const cached = producer.currentMetadata;
    if (cached && topics.every((t) => cached.topics.has(t))) return cached;
    try {
      return await producer.metadata({ topics, autocreateTopics: true });
    } catch (error) {
      await this.slot.reset();
      throw error;
    }
  }

  private nextRoundRobin(topic: string): number {
    const next = (this.roundRobin.get(topic) ?? -1) + 1;
    this.roundRobin.set(topic, next >= 0x7fffffff ? 0 : next);
    return next;
  }

  classify(error: unknown): PublishFailure {
    if (error instanceof OptionalDependencyMissingError) return { kind: 'config' };
    return classifyPlatformaticKafkaError(error);
  }

  close(): Promise<void> {
    return this.slot.close();
  }

  private async start(): Promise<Producer<Buffer, Buffer, string, string>> {
    const { Producer } = await loadPlatformaticKafka();
    const options = await platformaticProducerOptions(this.options, this.defaultClientId);
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

/** @internal The producer options from the `kafka` option (the publisher's and the transactional producer's). */
export async function platformaticProducerOptions(o: KafkaOptions, defaultClientId: string): Promise<ProducerOptions<Buffer, Buffer, string, string>> {
  const { ProduceAcks } = await loadPlatformaticKafka();
  const brokers = typeof o.brokers === 'function' ? await o.brokers() : o.brokers;
  const requestTimeout = o.requestTimeoutMs ?? 30_000;
  return {
    clientId: o.clientId ?? defaultClientId,
    bootstrapBrokers: brokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    maxInflights: 1,
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
}

function saslOptions(sasl: NonNullable<KafkaOptions['sasl']>): SASLOptions {
  if (sasl.mechanism === 'oauthbearer') {
    const provider = sasl.oauthBearerProvider;
    return { mechanism: 'OAUTHBEARER', token: async () => (await provider()).value };
  }
  const mechanism = sasl.mechanism === 'plain' ? 'PLAIN' : sasl.mechanism === 'scram-sha-256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-512';
  return { mechanism, username: sasl.username, password: sasl.password };
}

/**
 * The partitions (`topic\0partition`) a failed send still wrote, read from the errors it carries:
 * Kafka's produce responses (one error code per partition: 0 is written; a retried request is
 * answered again for every partition, a repeated batch deduplicated by the idempotent producer)
 * and the results of the destinations that succeeded (`produced.offsets`).
 */
function acceptedPartitions(error: unknown): Set<string> {
  const accepted = new Set<string>();
  const seen = new Set<unknown>();
  const visit = (e: unknown): void => {
    if (typeof e !== 'object' || e === null || seen.has(e)) return;
    seen.add(e);
    const { response, produced, errors, cause } = e as { response?: unknown; produced?: unknown; errors?: unknown; cause?: unknown };
    for (const topic of produceResponses(response)) {
      for (const partition of topic.partitionResponses) if (partition.errorCode === 0) accepted.add(`${topic.name}\u0000${partition.index}`);
    }
    const offsets = (produced as { offsets?: unknown } | undefined)?.offsets;
    if (Array.isArray(offsets)) {
      for (const o of offsets as { topic?: unknown; partition?: unknown }[]) if (typeof o?.topic === 'string' && typeof o.partition === 'number') accepted.add(`${o.topic}\u0000${o.partition}`);
    }
    if (Array.isArray(errors)) for (const inner of errors) visit(inner);
    visit(cause);
  };
  visit(error);
  return accepted;
}

/** The topics of a Produce response, or none when `response` is not one. */
function produceResponses(response: unknown): { name: string; partitionResponses: { index: number; errorCode: number }[] }[] {
  const responses = (response as { responses?: unknown } | undefined)?.responses;
  if (!Array.isArray(responses)) return [];
  return responses.filter(
    (t): t is { name: string; partitionResponses: { index: number; errorCode: number }[] } =>
      typeof t?.name === 'string' &&
      Array.isArray(t.partitionResponses) &&
      t.partitionResponses.every((p: { index?: unknown; errorCode?: unknown }) => typeof p?.index === 'number' && typeof p.errorCode === 'number'),
  );
}
