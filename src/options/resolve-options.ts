import { DEFAULT_INSTANCE_NAME } from './instance-name.js';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';
import { MAX_DURATION_MS } from '../message/encode-message.js';
import { resolveExactlyOnceScope } from '../publisher/kafka/exactly-once.publisher.js';
import { KAFKA_CLIENTS, KAFKA_OPTION_NAMES, type KafkaOptions } from '../publisher/kafka/kafka-options.interface.js';
import { resolveDialect } from '../store/dialects/resolve-dialect.js';
import { DEFAULT_INBOX_TABLE_NAME, DEFAULT_TABLE_NAME, validateTableName } from '../store/table-name.js';
import type {
  CheckOptions,
  InboxOptions,
  RelayOptions,
  ResolvedOptions,
  TransactionalMessageModuleOptions,
} from './transactional-message-options.interface.js';

const DAY_MS = 86_400_000;

/** Defaults of the relay options. */
export const DEFAULT_RELAY_OPTIONS: Readonly<Required<Omit<RelayOptions, 'ownership'>>> = {
  enabled: true,
  autoStart: true,
  batchSize: 500,
  maxBatchBytes: 1_000_000,
  pollIntervalMs: 1_000,
  leaseMs: 60_000,
  maxAttempts: 20,
  onDead: 'hold',
  backoffInitialMs: 1_000,
  backoffMaxMs: 300_000,
  retentionMs: 0,
  pruneIntervalMs: 60_000,
  pruneBatchSize: 1_000,
  shutdownTimeoutMs: 10_000,
  listenNotify: true,
  maxConnections: 3,
  vacuumAfterRows: 10_000,
};

/** Defaults of the check options: RocketMQ's limits (15 checks), cloud services' timings (10 s, 24 h). */
export const DEFAULT_CHECK_OPTIONS: Readonly<Required<CheckOptions>> = {
  intervalMs: 10_000,
  maxChecks: 15,
  maxAgeMs: DAY_MS,
  onExhausted: 'rollback',
  handlerTimeoutMs: 5_000,
  batchSize: 50,
  concurrency: 4,
};

/** Defaults of the inbox options. */
export const DEFAULT_INBOX_OPTIONS: Readonly<Required<InboxOptions>> = {
  enabled: false,
  tableName: DEFAULT_INBOX_TABLE_NAME,
  retentionMs: 14 * DAY_MS,
  pruneIntervalMs: 60_000,
  pruneBatchSize: 1_000,
};

/** Defaults of the module options. */
export const DEFAULT_OPTIONS = {
  tableName: DEFAULT_TABLE_NAME,
  checkImmunityMs: 10_000,
  maxMessageBytes: 1_000_000,
  queriesOutsideTransaction: 'error',
  joinClsTransactions: true,
  acquireTimeoutMs: 10_000,
  preparedStatements: 'auto',
  relay: DEFAULT_RELAY_OPTIONS,
  check: DEFAULT_CHECK_OPTIONS,
  inbox: DEFAULT_INBOX_OPTIONS,
} as const;

const KNOWN_OPTIONS = [
  'dataSource',
  'producerGroup',
  'tableName',
  'checkImmunityMs',
  'maxMessageBytes',
  'queriesOutsideTransaction',
  'joinClsTransactions',
  'clsConnectionName',
  'acquireTimeoutMs',
  'preparedStatements',
  'kafka',
  'publisher',
  'relay',
  'check',
  'inbox',
  'metrics',
];

const PRODUCER_GROUP_PATTERN = /^[A-Za-z0-9._:-]{1,255}$/;
const MAX_MESSAGE_BYTES_LIMIT = 64 * 1024 * 1024;
const MAX_LONG_DURATION_MS = 365 * DAY_MS;

/** @internal Merges defaults into the options and validates every one; throws InvalidModuleOptionsError. */
export function resolveOptions(options: TransactionalMessageModuleOptions, name = DEFAULT_INSTANCE_NAME): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidModuleOptionsError('(options)', options, 'an object with at least dataSource and producerGroup');
  }
  rejectUnknown('', options as object, KNOWN_OPTIONS);
  const { dataSource } = options;
  if (!dataSource || typeof dataSource !== 'object' || typeof dataSource.transaction !== 'function' || !dataSource.options) {
    throw new InvalidModuleOptionsError('dataSource', dataSource, 'a TypeORM DataSource');
  }
  try {
    resolveDialect(dataSource);
  } catch (error) {
    throw new InvalidModuleOptionsError('dataSource', `type ${dataSource.options.type}`, (error as Error).message);
  }
  // Without a producer group the instance is consumer-only: the inbox, tag filtering and message info.
  const producer = options.producerGroup !== undefined;
  if (producer && (typeof options.producerGroup !== 'string' || !PRODUCER_GROUP_PATTERN.test(options.producerGroup))) {
    throw new InvalidModuleOptionsError(
      'producerGroup',
      options.producerGroup,
      "1-255 characters of letters, digits, '.', '_', '-' or ':' (or leave it out in a service that only consumes)",
    );
  }
  if (!producer) {
    for (const name of ['kafka', 'publisher', 'tableName', 'checkImmunityMs', 'maxMessageBytes', 'check'] as const) {
      if (options[name] !== undefined) {
        throw new InvalidModuleOptionsError(
          'producerGroup',
          undefined,
          `a producer group, since '${name}' is set: it configures sending messages, which needs one (leave '${name}' out in a service that only consumes)`,
        );
      }
    }
    if (options.relay?.enabled === true) {
      throw new InvalidModuleOptionsError('producerGroup', undefined, 'a producer group, since relay.enabled is true (a relay publishes and checks messages of a producer group)');
    }
  }
  const queriesOutsideTransaction = options.queriesOutsideTransaction ?? DEFAULT_OPTIONS.queriesOutsideTransaction;
  if (!['error', 'warn', 'allow'].includes(queriesOutsideTransaction)) {
    throw new InvalidModuleOptionsError('queriesOutsideTransaction', queriesOutsideTransaction, "'error', 'warn' or 'allow'");
  }
  const joinClsTransactions = options.joinClsTransactions ?? DEFAULT_OPTIONS.joinClsTransactions;
  booleanOption('joinClsTransactions', joinClsTransactions);
  if (options.clsConnectionName !== undefined && (typeof options.clsConnectionName !== 'string' || !options.clsConnectionName)) {
    throw new InvalidModuleOptionsError('clsConnectionName', options.clsConnectionName, 'a non-empty string, or leave it out');
  }
  const tableName = validateTableName(options.tableName ?? DEFAULT_OPTIONS.tableName);
  const checkImmunityMs = durationOption('checkImmunityMs', options.checkImmunityMs ?? DEFAULT_OPTIONS.checkImmunityMs, 0, MAX_DURATION_MS);
  const acquireTimeoutMs = durationOption('acquireTimeoutMs', options.acquireTimeoutMs ?? DEFAULT_OPTIONS.acquireTimeoutMs, 1, MAX_DURATION_MS);
  const preparedStatements = options.preparedStatements ?? DEFAULT_OPTIONS.preparedStatements;
  if (preparedStatements !== 'auto' && typeof preparedStatements !== 'boolean') {
    throw new InvalidModuleOptionsError('preparedStatements', preparedStatements, "'auto', true or false");
  }
  const maxMessageBytes = integerOption('maxMessageBytes', options.maxMessageBytes ?? DEFAULT_OPTIONS.maxMessageBytes, 1, MAX_MESSAGE_BYTES_LIMIT);
  const relay = resolveRelay(producer ? options.relay : { enabled: false, ...options.relay });
  const check = resolveCheck(options.check);
  const inbox = resolveInbox(producer ? options.inbox : { enabled: true, ...options.inbox });
  validatePublisher(options, relay.enabled);
  // Its names come from the producer group and the table by default: checked with them.
  if (options.kafka?.exactlyOnce !== undefined) resolveExactlyOnceScope(options.kafka.exactlyOnce, { producerGroup: options.producerGroup ?? '', tableName });
  const metrics = options.metrics ?? true;
  booleanOption('metrics', metrics);
  return {
    name,
    dataSource,
    producer,
    producerGroup: options.producerGroup ?? '',
    tableName,
    checkImmunityMs,
    maxMessageBytes,
    queriesOutsideTransaction,
    joinClsTransactions,
    clsConnectionName: options.clsConnectionName,
    acquireTimeoutMs,
    preparedStatements,
    kafka: options.kafka,
    publisher: options.publisher,
    relay,
    check,
    inbox,
    metrics,
  };
}

function resolveInbox(inbox: InboxOptions | undefined): Required<InboxOptions> {
  const merged = { ...DEFAULT_INBOX_OPTIONS, ...objectOption('inbox', inbox, Object.keys(DEFAULT_INBOX_OPTIONS)) };
  booleanOption('inbox.enabled', merged.enabled);
  validateTableName(merged.tableName, 'inbox.tableName');
  durationOption('inbox.retentionMs', merged.retentionMs, 0, MAX_LONG_DURATION_MS);
  durationOption('inbox.pruneIntervalMs', merged.pruneIntervalMs, 1, MAX_DURATION_MS);
  integerOption('inbox.pruneBatchSize', merged.pruneBatchSize, 1, 100_000);
  return merged;
}

function resolveRelay(relay: RelayOptions | undefined): Required<Omit<RelayOptions, 'ownership'>> {
  const { ownership, ...given } = objectOption('relay', relay, [...Object.keys(DEFAULT_RELAY_OPTIONS), 'ownership']);
  if (ownership !== undefined && ownership !== 'buckets') {
    throw new InvalidModuleOptionsError(
      'relay.ownership',
      ownership,
      "no such option any more: key buckets are the only relay design. Remove the option (its last value, 'buckets', is still accepted " +
        "and changes nothing); to move relays of the row-lease design over, follow docs/upgrading.md",
    );
  }
  const merged = { ...DEFAULT_RELAY_OPTIONS, ...given };
  booleanOption('relay.enabled', merged.enabled);
  booleanOption('relay.listenNotify', merged.listenNotify);
  booleanOption('relay.autoStart', merged.autoStart);
  integerOption('relay.batchSize', merged.batchSize, 1, 10_000);
  integerOption('relay.maxBatchBytes', merged.maxBatchBytes, 1_024, MAX_MESSAGE_BYTES_LIMIT);
  durationOption('relay.pollIntervalMs', merged.pollIntervalMs, 1, MAX_DURATION_MS);
  durationOption('relay.leaseMs', merged.leaseMs, 10, MAX_DURATION_MS);
  integerOption('relay.maxAttempts', merged.maxAttempts, 1, 1_000_000);
  if (merged.onDead !== 'hold' && merged.onDead !== 'skip') {
    throw new InvalidModuleOptionsError('relay.onDead', merged.onDead, "'hold' or 'skip'");
  }
  durationOption('relay.backoffInitialMs', merged.backoffInitialMs, 0, MAX_DURATION_MS);
  durationOption('relay.backoffMaxMs', merged.backoffMaxMs, merged.backoffInitialMs, MAX_DURATION_MS);
  durationOption('relay.retentionMs', merged.retentionMs, 0, MAX_LONG_DURATION_MS);
  durationOption('relay.pruneIntervalMs', merged.pruneIntervalMs, 1, MAX_DURATION_MS);
  integerOption('relay.pruneBatchSize', merged.pruneBatchSize, 1, 100_000);
  durationOption('relay.shutdownTimeoutMs', merged.shutdownTimeoutMs, 0, MAX_DURATION_MS);
  integerOption('relay.maxConnections', merged.maxConnections, 1, 100);
  integerOption('relay.vacuumAfterRows', merged.vacuumAfterRows, 0, 1_000_000_000);
  return merged;
}

function resolveCheck(check: CheckOptions | undefined): Required<CheckOptions> {
  const merged = { ...DEFAULT_CHECK_OPTIONS, ...objectOption('check', check, Object.keys(DEFAULT_CHECK_OPTIONS)) };
  durationOption('check.intervalMs', merged.intervalMs, 1, MAX_DURATION_MS);
  integerOption('check.maxChecks', merged.maxChecks, 1, 1_000_000);
  durationOption('check.maxAgeMs', merged.maxAgeMs, 1, MAX_LONG_DURATION_MS);
  durationOption('check.handlerTimeoutMs', merged.handlerTimeoutMs, 1, MAX_DURATION_MS);
  integerOption('check.batchSize', merged.batchSize, 1, 10_000);
  integerOption('check.concurrency', merged.concurrency, 1, 1_000);
  if (merged.onExhausted !== 'rollback' && merged.onExhausted !== 'park') {
    throw new InvalidModuleOptionsError('check.onExhausted', merged.onExhausted, "'rollback' or 'park'");
  }
  return merged;
}

function validatePublisher(options: TransactionalMessageModuleOptions, relayEnabled: boolean): void {
  const { kafka, publisher } = options;
  if (kafka !== undefined && publisher !== undefined) {
    throw new InvalidModuleOptionsError('publisher', 'given together with kafka', 'either kafka (the Kafka publisher) or publisher, not both');
  }
  if (publisher !== undefined) {
    for (const method of ['connect', 'publish', 'classify', 'close'] as const) {
      if (typeof (publisher as unknown as Record<string, unknown>)?.[method] !== 'function') {
        throw new InvalidModuleOptionsError('publisher', publisher, `a MessagePublisher (its ${method}() is missing)`);
      }
    }
  }
  if (kafka !== undefined) validateKafka(kafka);
  if (relayEnabled && kafka === undefined && publisher === undefined) {
    throw new InvalidModuleOptionsError(
      'kafka',
      undefined,
      "the Kafka client configuration, e.g. { brokers: ['127.0.0.1:9092'] }, so the relay can publish " +
        '(or pass publisher, or set relay.enabled to false in instances that only write messages)',
    );
  }
}

/** kafkajs option names that users bring along, and what they are called here. */
const RENAMED_KAFKA_OPTIONS: Record<string, string> = {
  connectionTimeout: 'connectionTimeoutMs',
  requestTimeout: 'requestTimeoutMs',
  authenticationTimeout: 'authenticationTimeoutMs',
};

/** Options an earlier version had, and what replaced them (CHANGELOG.md says how to move). */
const REMOVED_KAFKA_OPTIONS: Record<string, string> = {
  logLevel:
    "no value: kafka.logLevel was removed in 0.2.0. The client's own log lines go to Nest's Logger at debug (context " +
    "'TransactionalMessage:kafkajs'); what really failed is logged once by the relay. Filter with your app's logger levels (see CHANGELOG.md)",
};

function validateKafka(kafka: KafkaOptions): void {
  if (kafka === null || typeof kafka !== 'object' || Array.isArray(kafka)) {
    throw new InvalidModuleOptionsError('kafka', kafka, "the Kafka client options, e.g. { brokers: ['127.0.0.1:9092'] }");
  }
  for (const name of Object.keys(kafka)) {
    if (REMOVED_KAFKA_OPTIONS[name]) {
      throw new InvalidModuleOptionsError(`kafka.${name}`, (kafka as unknown as Record<string, unknown>)[name], REMOVED_KAFKA_OPTIONS[name]);
    }
    if (RENAMED_KAFKA_OPTIONS[name]) {
      throw new InvalidModuleOptionsError(`kafka.${name}`, (kafka as unknown as Record<string, unknown>)[name], `kafka.${RENAMED_KAFKA_OPTIONS[name]} (in ms)`);
    }
  }
  rejectUnknown('kafka.', kafka, KAFKA_OPTION_NAMES);
  const { client, brokers, clientId, ssl, sasl } = kafka;
  if (client !== undefined && !(KAFKA_CLIENTS as readonly unknown[]).includes(client)) {
    throw new InvalidModuleOptionsError('kafka.client', client, `one of ${KAFKA_CLIENTS.map((c) => `'${c}'`).join(', ')} (installed in your app)`);
  }
  // Without kafka.client, the installed client is used (@platformatic/kafka, else kafkajs): there,
  // @platformatic/kafka ignores it (the publisher says so when it starts).
  if (client === '@platformatic/kafka' && kafka.authenticationTimeoutMs !== undefined) {
    throw new InvalidModuleOptionsError(
      'kafka.authenticationTimeoutMs',
      kafka.authenticationTimeoutMs,
      "no value with kafka.client '@platformatic/kafka' (it has no separate authentication timeout: connectionTimeoutMs and requestTimeoutMs bound it)",
    );
  }
  const validBrokers =
    typeof brokers === 'function' ||
    (Array.isArray(brokers) && brokers.length > 0 && brokers.every((b) => typeof b === 'string' && /^[^\s:]+:\d{1,5}$/.test(b)));
  if (!validBrokers) {
    throw new InvalidModuleOptionsError('kafka.brokers', brokers, "a non-empty array of 'host:port' strings, e.g. ['127.0.0.1:9092'], or a function returning one");
  }
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length === 0)) {
    throw new InvalidModuleOptionsError('kafka.clientId', clientId, 'a non-empty string (default: the producer group)');
  }
  if (ssl !== undefined && typeof ssl !== 'boolean' && (ssl === null || typeof ssl !== 'object')) {
    throw new InvalidModuleOptionsError('kafka.ssl', ssl, "true, or Node's TLS options ({ ca, cert, key, ... })");
  }
  if (sasl !== undefined) {
    const mechanism = (sasl as { mechanism?: unknown })?.mechanism;
    if (!['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'].includes(mechanism as string)) {
      throw new InvalidModuleOptionsError('kafka.sasl.mechanism', mechanism, "'plain', 'scram-sha-256', 'scram-sha-512' or 'oauthbearer'");
    }
  }
  for (const name of ['connectionTimeoutMs', 'requestTimeoutMs', 'authenticationTimeoutMs'] as const) {
    if (kafka[name] !== undefined) durationOption(`kafka.${name}`, kafka[name], 1, MAX_DURATION_MS);
  }
}

function rejectUnknown(prefix: string, value: object, known: readonly string[]): void {
  for (const name of Object.keys(value)) {
    if (!known.includes(name)) {
      throw new InvalidModuleOptionsError(
        `${prefix}${name}`,
        (value as Record<string, unknown>)[name],
        `no such option; known options${prefix ? ` of ${prefix.slice(0, -1)}` : ''} are ${known.join(', ')}`,
      );
    }
  }
}

function objectOption<T extends object>(name: string, value: T | undefined, known: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidModuleOptionsError(name, value, 'an object');
  }
  rejectUnknown(`${name}.`, value, known);
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function booleanOption(name: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new InvalidModuleOptionsError(name, value, 'true or false');
}

/**
 * A duration in ms. The short ones end as Node timers (at most 2^31 - 1 ms, about 24.8 days: a
 * longer timer fires at once); the long ones (retentions, the maximum age of a half message) are
 * only compared with the database's clock, up to 365 days.
 */
function durationOption(name: string, value: unknown, min: number, max: number): number {
  const why = max === MAX_LONG_DURATION_MS ? ' (365 days)' : max === MAX_DURATION_MS ? ' (2^31 - 1: about 24.8 days)' : '';
  return integerOption(name, value, min, max, `a whole number of milliseconds from ${min} to ${max}${why}`);
}

function integerOption(name: string, value: unknown, min: number, max: number, expected = `a whole number from ${min} to ${max}`): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidModuleOptionsError(name, value, expected);
  }
  return value;
}
