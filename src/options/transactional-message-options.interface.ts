import type { DataSource } from 'typeorm';
import type { KafkaOptions } from '../publisher/kafka/kafka-options.interface.js';
import type { MessagePublisher } from '../publisher/message-publisher.interface.js';

/** What happens when code inside a transactional method queries outside its transaction. */
export type QueriesOutsideTransactionMode = 'error' | 'warn' | 'allow';

/** What a DEAD message does to the later messages of its key. */
export type DeadMessagePolicy = 'hold' | 'skip';

/** What happens to a half message whose checks are exhausted. */
export type CheckExhaustedAction = 'rollback' | 'park';

/** Options of the relay, which publishes committed messages and runs transaction checks. */
export interface RelayOptions {
  /** Run the relay in this instance. Default `true`. Turn it off in instances that only write. */
  enabled?: boolean;
  /**
   * Start publishing, checking and pruning when the application boots. Default `true`. With
   * `false` (tests, scripts) nothing runs on its own: `TransactionalMessageRelay.drain()` and
   * `runChecksNow()` do the work when asked.
   */
  autoStart?: boolean;
  /** Committed messages claimed and published per batch. Default `500`. */
  batchSize?: number;
  /**
   * The most bytes (keys, values, headers) one publish request carries; a batch over it is sent
   * in several requests, in order, and a message larger than it goes alone. Keep it under the
   * broker's `message.max.bytes` (1048588 by default, which bounds what one partition receives
   * in one request) and `socket.request.max.bytes` (104857600). Default `1000000`.
   */
  maxBatchBytes?: number;
  /** Poll for due work this often, in ms, when no wake-up arrives. Default `1000`. */
  pollIntervalMs?: number;
  /** How long a claim is owned before another relay may take it over, in ms. Default `60000`. */
  leaseMs?: number;
  /** Publish attempts of a message before it goes DEAD. Default `20`. */
  maxAttempts?: number;
  /**
   * What a DEAD message does to the later messages of its key. `'hold'` (default): they wait
   * until an operator replays it (it is then delivered first, and the key goes on in order) or
   * discards it; per key, delivery stays in write order. `'skip'`: they go on without it; a
   * replayed DEAD message arrives after them.
   */
  onDead?: DeadMessagePolicy;
  /**
   * @deprecated Key buckets are the only relay design now: `'buckets'` is accepted and changes
   * nothing; `'rows'` is refused (see docs/upgrading.md). Remove the option.
   */
  ownership?: 'buckets';
  /** First retry delay in ms, doubled on each attempt up to `backoffMaxMs`, with ±20 % jitter. Default `1000`. */
  backoffInitialMs?: number;
  /** Largest retry delay, in ms. Default `300000` (5 minutes). */
  backoffMaxMs?: number;
  /**
   * How long finished messages are kept, in ms. Default `0`: the relay deletes a delivered message
   * (and its check history) when it records the delivery, in the same statement that would mark
   * it: the cheapest delivery, and no delivered history (`getMessage()` finds nothing). Above `0`:
   * delivered messages are marked DELIVERED and, like rolled-back ones, deleted this long after
   * they finished (e.g. `604800000`, 7 days, to look delivered messages up).
   */
  retentionMs?: number;
  /** How often finished messages are pruned, in ms. Default `60000`. */
  pruneIntervalMs?: number;
  /** Rows deleted per pruning statement. Default `1000`. */
  pruneBatchSize?: number;
  /** On shutdown, wait at most this long for the batch in flight, in ms. Default `10000`. */
  shutdownTimeoutMs?: number;
  /** PostgreSQL: wake relays of other processes with LISTEN/NOTIFY. Default `true`. */
  listenNotify?: boolean;
  /**
   * PostgreSQL: the relay runs `VACUUM` on the message table once it has deleted or marked this
   * many messages since the last one and has caught up (not while it drains a backlog). Until a
   * vacuum, the index entries of delivered messages stay behind in the index the relay reads;
   * autovacuum visits a database at most once a minute, and a relay at 500 messages/s would read
   * through 30,000 dead entries per claim by then (claims 10× slower, a backlog that feeds itself). `0`: never (leave it to autovacuum, tuned for the table).
   * Needs the table's owner (the user that ran the migrations); otherwise PostgreSQL skips it with a
   * warning. Ignored on MySQL/MariaDB (InnoDB purges them) and SQLite. Default `10000`.
   */
  vacuumAfterRows?: number;
  /**
   * Connections of the DataSource's pool that the relay, the checks and pruning use at most at
   * once, so business requests always find one. LISTEN uses a connection of its own, outside the
   * pool. Default `3`.
   */
  maxConnections?: number;
}

/** Options of the transaction check (RocketMQ's check-back). */
export interface CheckOptions {
  /** Between two checks of the same half message, in ms. Default `10000`. */
  intervalMs?: number;
  /** Checks of a half message before the `onExhausted` action. Default `15`. */
  maxChecks?: number;
  /** Age of a half message after which `onExhausted` applies, checked or not, in ms. Default `86400000` (24 h). */
  maxAgeMs?: number;
  /** `'rollback'` (default, as RocketMQ) or `'park'`: status CHECK_EXHAUSTED, for an operator to commit or roll back. */
  onExhausted?: CheckExhaustedAction;
  /** A check handler that has not answered after this long counts as UNKNOWN, in ms. Default `5000`. */
  handlerTimeoutMs?: number;
  /** Half messages claimed per check round. Default `50`. */
  batchSize?: number;
  /**
   * Check handler calls running at once. A call abandoned at `handlerTimeoutMs` still counts until
   * it really returns or throws, and a message whose call has not returned is not called again (its
   * checks count as UNKNOWN meanwhile). Default `4`.
   */
  concurrency?: number;
}

/** Options of the consumer-side inbox (deduplication by message id). */
export interface InboxOptions {
  /** Use the inbox in this application (`@Inbox` handlers, `TransactionalInbox`). Default `false`, or `true` in a consumer-only instance (no `producerGroup`). */
  enabled?: boolean;
  /** The inbox table (must match `transactionalMessageInboxMigrations`). Default `'transactional_message_inbox'`. */
  tableName?: string;
  /** Inbox rows are deleted this long after the message was first processed, in ms. Longer than any redelivery window. Default `1209600000` (14 days). */
  retentionMs?: number;
  /** How often old inbox rows are pruned, in ms. Default `60000`. */
  pruneIntervalMs?: number;
  /** Inbox rows deleted per pruning statement. Default `1000`. */
  pruneBatchSize?: number;
}

/** Options of `TransactionalMessageModule.forRoot()` / `forRootAsync()`. */
export interface TransactionalMessageModuleOptions {
  /** The TypeORM DataSource that holds both your business tables and the message table. Required. */
  dataSource: DataSource;
  /**
   * The producer group (RocketMQ): the name of the application that sends these messages; the
   * instances of a group check each other's half messages. 1-255 characters of letters, digits,
   * `.`, `_`, `-` or `:`. Leave it out in a service that only consumes: the instance then runs
   * the inbox, tag filtering and message info only (no relay, no message table, `inbox.enabled`
   * defaults to `true`), and sending options are refused.
   */
  producerGroup?: string;
  /** Name of the message table (must match the migrations'). Default `'transactional_message'`. */
  tableName?: string;
  /** How long after it is stored a HALF message is first checked, in ms. Default `10000`. */
  checkImmunityMs?: number;
  /**
   * The largest message accepted, in bytes: body, key, tags and properties. A larger one is
   * refused when it is sent, before anything is stored. Default `1000000` (below Kafka's
   * default `message.max.bytes` of 1048588).
   */
  maxMessageBytes?: number;
  /**
   * Inside a transactional method, a query sent through a repository or EntityManager that is not
   * bound to the transaction (an `@InjectRepository()` repository, `dataSource.manager`) would run
   * outside it. `'error'` (default) throws QueryOutsideTransactionError; `'warn'` logs once per
   * method and lets it run; `'allow'` lets it run silently.
   */
  queriesOutsideTransaction?: QueriesOutsideTransactionMode;
  /**
   * Join transactions of `@nestjs-cls/transactional` (TypeORM adapter) when it is installed and
   * registered for the same DataSource, and open transactions through it so that
   * `TransactionHost.tx` sees them. Default `true`; it is ignored when the package is absent.
   */
  joinClsTransactions?: boolean;
  /** `connectionName` of the `ClsPluginTransactional` to join, when you registered several. Default none. */
  clsConnectionName?: string;
  /**
   * How long the library waits for a free connection of the DataSource's pool for a transaction
   * of its own (the explicit API outside any transaction, the relay, the checks) before it fails
   * with ConnectionAcquireTimeoutError instead of waiting forever, in ms. Default `10000`.
   */
  acquireTimeoutMs?: number;
  /**
   * PostgreSQL: send the message INSERT, which every transactional method runs, as a named
   * prepared statement, parsed and planned once per connection (node-postgres keeps it with the
   * connection). Default `'auto'`: at boot, the library checks that a statement prepared in one
   * transaction is still known in the next ones on this DataSource's connections, and prepares
   * only if it is (a pooler in transaction mode, PgBouncer before 1.21 or without
   * `max_prepared_statements`, gives each transaction another server connection). `true`: always,
   * and the boot fails with PreparedStatementUnavailableError when the check finds they are lost.
   * `false`: never. Ignored on MySQL/MariaDB and SQLite.
   */
  preparedStatements?: boolean | 'auto';
  /**
   * The built-in Kafka publisher: brokers, client id, TLS, SASL, timeouts (see KafkaOptions). It
   * uses the kafkajs package, an optional peer dependency loaded only when this option is given.
   * Required when the relay runs, unless `publisher` is given.
   */
  kafka?: KafkaOptions;
  /** A publisher of your own instead of Kafka (see MessagePublisher). */
  publisher?: MessagePublisher;
  /** The relay: delivery, checks and pruning. */
  relay?: RelayOptions;
  /** The transaction check. */
  check?: CheckOptions;
  /** The consumer-side inbox. */
  inbox?: InboxOptions;
  /**
   * Record OpenTelemetry metrics when `@opentelemetry/api` is installed (an optional peer) and a
   * MeterProvider is registered before the application is created. Default `true`.
   */
  metrics?: boolean;
}

/** @internal The options after defaults and validation. */
export interface ResolvedOptions {
  /** The registration's name (`forRoot({ name })`; `'default'` without one). */
  name: string;
  dataSource: DataSource;
  /** Whether this instance sends messages (a producer group is set), or only consumes. */
  producer: boolean;
  /** The producer group, or '' in a consumer-only instance. */
  producerGroup: string;
  tableName: string;
  checkImmunityMs: number;
  maxMessageBytes: number;
  queriesOutsideTransaction: QueriesOutsideTransactionMode;
  joinClsTransactions: boolean;
  clsConnectionName: string | undefined;
  acquireTimeoutMs: number;
  preparedStatements: boolean | 'auto';
  kafka: KafkaOptions | undefined;
  publisher: MessagePublisher | undefined;
  relay: Required<Omit<RelayOptions, 'ownership'>>;
  check: Required<CheckOptions>;
  inbox: Required<InboxOptions>;
  metrics: boolean;
}
