import type { ConnectionOptions } from 'node:tls';

/** SASL authentication of the Kafka client. */
export type KafkaSaslOptions =
  | { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string }
  | { mechanism: 'oauthbearer'; oauthBearerProvider: () => Promise<{ value: string }> };

/** The Kafka clients the built-in publisher can run on. */
export const KAFKA_CLIENTS = ['kafkajs', '@platformatic/kafka'] as const;
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number];
/**
 * The client preferred when `kafka.client` is not given and both are installed. @platformatic/kafka:
 * maintained, pure JavaScript, faster than kafkajs on this project's bench (bench/RESULTS.md); it
 * passed the same fault suite and soaks. With only kafkajs installed, kafkajs is used.
 */
export const DEFAULT_KAFKA_CLIENT: KafkaClientName = '@platformatic/kafka';

/**
 * How the built-in Kafka publisher connects: the module's `kafka` option. The client it runs on
 * (`client`) is an optional peer dependency, loaded only when this option is used.
 */
export interface KafkaOptions {
  /**
   * The Kafka client: `'@platformatic/kafka'` (2.12+, maintained, pure JavaScript, faster) or
   * `'kafkajs'` (2.2.4, no longer maintained). Install the one you use. Default: the one installed,
   * `'@platformatic/kafka'` when both are.
   */
  client?: KafkaClientName;
  /** Bootstrap brokers, `'host:port'`, or a function that returns them. Required. */
  brokers: string[] | (() => string[] | Promise<string[]>);
  /** The client id the brokers see (quotas, logs). Default: the module's `producerGroup`. */
  clientId?: string;
  /** TLS: `true`, or Node's TLS options (ca, cert, key, servername, ...). Default: plaintext. */
  ssl?: boolean | ConnectionOptions;
  /** SASL authentication (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER). Default: none. */
  sasl?: KafkaSaslOptions;
  /** Time to establish a connection to a broker, in ms. Default `1000`. */
  connectionTimeoutMs?: number;
  /** Time to wait for a broker's answer to a request, in ms. Default `30000`. */
  requestTimeoutMs?: number;
  /** Time allowed for SASL authentication, in ms (kafkajs only: refused with kafka.client '@platformatic/kafka', ignored when it is picked as the installed one). Default `10000`. */
  authenticationTimeoutMs?: number;
  /**
   * Exactly-once delivery into Kafka (docs/exactly-once.md): each committed message is in its
   * topic once for `read_committed` consumers, also when relays are killed or frozen at any point.
   * The relay publishes in Kafka transactions, one per *slot* of key buckets (8 slots), with a
   * marks record on the library's marks topic in each. Needs a cluster that allows transactions,
   * and @platformatic/kafka installed (it reads the marks topic, whichever client publishes).
   * `true`, or the names to use. Default `false` (at least once: the consumer's inbox removes
   * duplicates).
   */
  exactlyOnce?: boolean | KafkaExactlyOnceOptions;
}

/** The names `kafka.exactlyOnce` uses in Kafka. */
export interface KafkaExactlyOnceOptions {
  /**
   * Slot n's producer has the transactional id `<transactionalIdPrefix>.tm-slot-<n>`. Every
   * application instance sharing a message table uses the same prefix. Default
   * `<producerGroup>.<tableName>` (required with `new KafkaPublisher()`).
   */
  transactionalIdPrefix?: string;
  /**
   * The marks topic: 8 partitions (one per slot), compacted; created when missing. Default
   * `<producerGroup>.<tableName>.tm-marks` (required with `new KafkaPublisher()`).
   */
  marksTopic?: string;
}

/** @internal The options' names, for the module's validation. */
export const KAFKA_OPTION_NAMES = ['client', 'brokers', 'clientId', 'ssl', 'sasl', 'connectionTimeoutMs', 'requestTimeoutMs', 'authenticationTimeoutMs', 'exactlyOnce'];
