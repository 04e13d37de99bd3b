import type { ConnectionOptions } from 'node:tls';

/** SASL authentication of the Kafka client. */
export type KafkaSaslOptions =
  | { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string }
  | { mechanism: 'oauthbearer'; oauthBearerProvider: () => Promise<{ value: string }> };

/**
 * How the built-in Kafka publisher connects: the module's `kafka` option. The publisher uses the
 * kafkajs client (an optional peer dependency, loaded only when this option is used).
 */
export interface KafkaOptions {
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
  /** Time allowed for SASL authentication, in ms. Default `10000`. */
  authenticationTimeoutMs?: number;
}

/** @internal The options' names, for the module's validation. */
export const KAFKA_OPTION_NAMES = ['brokers', 'clientId', 'ssl', 'sasl', 'connectionTimeoutMs', 'requestTimeoutMs', 'authenticationTimeoutMs'];
