import type { KafkaClientName, KafkaOptions } from './kafka-options.interface.js';
import { kafkaJsConfig, loadKafkaJs } from './kafkajs.publisher.js';
import { loadPlatformaticKafka, platformaticProducerOptions } from './platformatic.publisher.js';

/** @internal One record of a Kafka transaction. */
export interface TransactionalRecord {
  topic: string;
  /** The partition; without it, the Java client's partitioner places a keyed record (murmur2). */
  partition?: number;
  key?: Buffer;
  value: Buffer;
  headers?: Record<string, string>;
  /** The record's timestamp (ms since the epoch); default: when it is sent. */
  timestamp?: number;
}

/**
 * @internal The Kafka producer of one `transactional.id`: the building block of exactly-once
 * delivery into Kafka (docs/exactly-once.md; ExactlyOnceKafkaPublisher). One transactional id
 * per unit of ownership, so that whoever takes the unit over fences the previous holder:
 *
 * - `start()` takes the id over. The transaction coordinator aborts the previous holder's open
 *   transaction (or completes one it had already asked to commit), and from then on every
 *   transactional request of the previous holder fails (`isProducerFenced`). A previous holder
 *   that is gone changes nothing: its open transaction is aborted here, without waiting for the
 *   transaction timeout.
 * - `send(records)` writes the records in one transaction and commits it. On a failure it aborts
 *   the transaction when it still can and rejects: none of the records are visible to
 *   `read_committed` consumers, unless the commit itself was written and only its answer lost.
 *   After a fencing error the producer is of no more use: close it.
 */
export interface TransactionalKafkaProducer {
  readonly transactionalId: string;
  start(): Promise<void>;
  send(records: readonly TransactionalRecord[]): Promise<void>;
  close(): Promise<void>;
}

/** @internal A transactional producer on the given client. */
export function createTransactionalKafkaProducer(
  client: KafkaClientName,
  options: KafkaOptions,
  transactionalId: string,
  defaultClientId = 'nestjs-transactional-message',
): TransactionalKafkaProducer {
  return client === 'kafkajs'
    ? new KafkaJsTransactionalProducer(options, transactionalId, defaultClientId)
    : new PlatformaticTransactionalProducer(options, transactionalId, defaultClientId);
}

/** @internal Whether a Kafka client's error says another producer took this transactional id over. */
export function isProducerFenced(error: unknown): boolean {
  const seen = new Set<unknown>();
  const visit = (e: unknown): boolean => {
    if (typeof e !== 'object' || e === null || seen.has(e)) return false;
    seen.add(e);
    const { type, apiId, errors, cause } = e as { type?: unknown; apiId?: unknown; errors?: unknown; cause?: unknown };
    // kafkajs: `type`; @platformatic/kafka: `apiId` on its ProtocolError, nested in MultipleErrors.
    if (FENCED_CODES.has(String(type)) || FENCED_CODES.has(String(apiId))) return true;
    return (Array.isArray(errors) && errors.some(visit)) || visit(cause);
  };
  return visit(error);
}

/**
 * The broker's answers to a producer whose epoch is no longer the transactional id's:
 * PRODUCER_FENCED (Kafka 2.7+ for InitProducerId and EndTxn) and INVALID_PRODUCER_EPOCH (produce,
 * AddPartitionsToTxn and older brokers).
 */
const FENCED_CODES = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH']);

type KafkaJs = Awaited<ReturnType<typeof loadKafkaJs>>;
type KafkaJsProducer = ReturnType<InstanceType<KafkaJs['Kafka']>['producer']>;

class KafkaJsTransactionalProducer implements TransactionalKafkaProducer {
  private producer: KafkaJsProducer | undefined;

  constructor(
    private readonly options: KafkaOptions,
    readonly transactionalId: string,
    private readonly defaultClientId: string,
  ) {}

  async start(): Promise<void> {
    const { Kafka, Partitioners } = await loadKafkaJs();
    const producer = new Kafka(kafkaJsConfig(this.options, this.defaultClientId)).producer({
      transactionalId: this.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      // From 10 ms, as for @platformatic/kafka below (CONCURRENT_TRANSACTIONS between transactions).
      retry: { retries: 8, initialRetryTime: 10, maxRetryTime: 2_000 },
    });
    try {
      await producer.connect();
      // kafkajs asks for its producer id at the first transaction, not at connect: a producer that
      // only connected would not fence the previous holder. Begin one, and end it at once.
      const transaction = await producer.transaction();
      await transaction.abort();
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    this.producer = producer;
  }

  async send(records: readonly TransactionalRecord[]): Promise<void> {
    if (!this.producer) throw new Error(`The transactional producer ${this.transactionalId} is not started`);
    const transaction = await this.producer.transaction();
    try {
      const byTopic = new Map<string, { key?: Buffer; value: Buffer; partition?: number; headers?: Record<string, string>; timestamp?: string }[]>();
      for (const r of records) {
        let messages = byTopic.get(r.topic);
        if (!messages) byTopic.set(r.topic, (messages = []));
        messages.push({ value: r.value, ...(r.key !== undefined ? { key: r.key } : {}), ...(r.partition !== undefined ? { partition: r.partition } : {}), ...(r.headers ? { headers: r.headers } : {}), ...(r.timestamp !== undefined ? { timestamp: String(r.timestamp) } : {}) });
      }
      await transaction.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
      await transaction.commit();
    } catch (error) {
      if (transaction.isActive()) await transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }
}

type PlatformaticProducer = import('@platformatic/kafka').Producer<Buffer, Buffer, string, string>;

class PlatformaticTransactionalProducer implements TransactionalKafkaProducer {
  private producer: PlatformaticProducer | undefined;

  constructor(
    private readonly options: KafkaOptions,
    readonly transactionalId: string,
    private readonly defaultClientId: string,
  ) {}

  async start(): Promise<void> {
    const { Producer } = await loadPlatformaticKafka();
    const producer = new Producer<Buffer, Buffer, string, string>({
      ...(await platformaticProducerOptions(this.options, this.defaultClientId)),
      transactionalId: this.transactionalId,
      // InitProducerId with "no producer id yet": the client's default (0, epoch 0) is refused with
      // PRODUCER_FENCED for a transactional id the broker already knows (any takeover or restart).
      producerId: -1n,
      producerEpoch: -1,
      // The next transaction's first request often meets the coordinator still writing the last
      // one's markers (CONCURRENT_TRANSACTIONS): retried after 100 ms as the publisher does, one
      // transaction per batch ran at a tenth of the at-least-once rate (bench/RESULTS.md). Retries
      // from 10 ms, as the Java client's 20 ms for that answer; eight of them span 2.5 s as before.
      retries: 8,
      retryDelay: (_client, _operation, attempt) => Math.min(2_000, 10 * 2 ** (attempt - 1)),
    });
    try {
      // The first transaction asks for the producer id (the fencing); it holds nothing, so it is
      // ended here without the broker (an EndTxn of an empty transaction is INVALID_TXN_STATE).
      const transaction = await producer.beginTransaction();
      await transaction.cancel();
    } catch (error) {
      await producer.close(true).catch(() => undefined);
      throw error;
    }
    this.producer = producer;
  }

  async send(records: readonly TransactionalRecord[]): Promise<void> {
    if (!this.producer) throw new Error(`The transactional producer ${this.transactionalId} is not started`);
    const transaction = await this.producer.beginTransaction();
    try {
      await transaction.send({
        messages: records.map((r) => ({
          topic: r.topic,
          value: r.value,
          ...(r.key !== undefined ? { key: r.key } : {}),
          ...(r.partition !== undefined ? { partition: r.partition } : {}),
          ...(r.headers ? { headers: r.headers } : {}),
          ...(r.timestamp !== undefined ? { timestamp: BigInt(r.timestamp) } : {}),
        })),
      });
      await transaction.commit();
    } catch (error) {
      if (!transaction.completed) await transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.close(true).catch(() => undefined);
  }
}
