import { Logger } from '@nestjs/common';
import { TransactionalMessageAdmin } from '../admin/transactional-message-admin.service.js';
import { CheckHandlerRegistry } from '../check/check-handler.registry.js';
import { CheckScheduler } from '../check/check-scheduler.service.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { Doorbell } from '../common/doorbell.js';
import { InboxPruner } from '../consumer/inbox-pruner.service.js';
import { InboxStore } from '../consumer/inbox.store.js';
import { TransactionalInbox } from '../consumer/transactional-inbox.service.js';
import { BackgroundWork } from '../context/background-work.js';
import { ClsTransactionBridge, type ProviderLookup } from '../context/cls-transaction.bridge.js';
import { CommitNotifier } from '../context/commit-notifier.js';
import { QueryGuard } from '../context/query-guard.js';
import { StoreTransactions } from '../context/store-transactions.js';
import { TransactionContext } from '../context/transaction-context.service.js';
import { TransactionRunner } from '../context/transaction-runner.service.js';
import { TypeormTransactionalBridge } from '../context/typeorm-transactional.bridge.js';
import { describeError } from '../errors/describe-error.js';
import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';
import { PublisherConfigurationError } from '../errors/publisher-configuration.error.js';
import { TransactionalMessageHealthIndicator } from '../operations/health.indicator.js';
import { TransactionalMessageMetrics } from '../operations/metrics.service.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { MessageSender } from '../producer/message-sender.service.js';
import { TransactionalMessageProducer } from '../producer/transactional-message.producer.js';
import { KafkaPublisher } from '../publisher/kafka/kafka.publisher.js';
import { slotTransactionsOf, type MessagePublisher } from '../publisher/message-publisher.interface.js';
import { DeliveryRelay } from '../relay/delivery-relay.service.js';
import { DeadRowVacuum } from '../relay/delivery/dead-row-vacuum.js';
import { DelayedMessageTimer } from '../relay/delayed-message-timer.js';
import { BucketOwnership } from '../relay/ownership/bucket.ownership.js';
import type { DeliveryOwnership } from '../relay/ownership/delivery-ownership.js';
import { PgNotificationListener } from '../relay/pg-notification.listener.js';
import { Pruner } from '../relay/pruner.service.js';
import { relayIdentity } from '../relay/relay-identity.js';
import { TransactionalMessageRelay } from './transactional-message.relay.js';
import { AdminStore } from '../store/admin.store.js';
import { BucketStore } from '../store/bucket.store.js';
import { CheckStore } from '../store/check.store.js';
import { DelayedStore } from '../store/delayed.store.js';
import { resolveDialect } from '../store/dialects/resolve-dialect.js';
import { poolSize } from '../store/dialects/pool-size.js';
import { MessageStore } from '../store/message.store.js';
import { RetentionStore } from '../store/retention.store.js';
import { loadTracing } from '../telemetry/tracing.js';
import { PgConnectionGuard } from './pg-connection-guard.js';
import { PreparedStatementsCheck } from './prepared-statements.check.js';
import { SchemaCheck } from './schema-check.service.js';

/** How long the start waits for the built-in Kafka publisher to connect. */
const START_CONNECT_WAIT_MS = 5_000;

/**
 * @internal Everything one registration runs on its DataSource, built with `new` from the resolved
 * options: the store and its dialect, the transaction context, the producer and the decorator's
 * sender, the relay and its ownership of key buckets, the checks, the inbox, pruning and the
 * operators' services. It starts and stops its parts in a fixed order:
 *
 * - `init()`: check the DataSource and the message table (fail with the fix), guard PostgreSQL
 *   connections, connect the transaction adapters, install the query guard;
 * - `instrument()`: metrics and tracing;
 * - `start()`: LISTEN, delivery, the timer of delayed messages, checks, pruning (when the relay runs here), inbox pruning;
 * - `stop()` (while the DataSource is open): the checks first (no new handler call; what no
 *   handler was called for is released, uncounted), then delivery (finish or release the batch in
 *   flight), pruning and LISTEN; then close background database access, so that nothing still in
 *   flight past `shutdownTimeoutMs` runs against the database, and only then disconnect the
 *   publisher (kafkajs does not wait for sends in flight);
 * - `release()`: remove the query guard and the connection guard, once nothing runs.
 *
 * The Nest module is a thin layer over it, in the manner of `@nestjs/typeorm` over a DataSource:
 * it builds one engine per registration, exports the engine's services under their classes or the
 * registration's tokens, binds the decorated methods and check handlers it discovers to this
 * engine's sender and handler registry, and calls these methods from its lifecycle hooks.
 */
export class TransactionalMessageEngine {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private relayStarted = false;
  private stopped = false;

  /** This relay's identity in the table's leases: the producer group, host and process. */
  readonly identity: string;
  /** The downstream: `publisher`, the built-in Kafka publisher, or none (consumer-only, no relay). */
  readonly publisher: MessagePublisher | null;

  readonly store: MessageStore;
  readonly checkStore: CheckStore;
  readonly adminStore: AdminStore;
  readonly retentionStore: RetentionStore;
  readonly inboxStore: InboxStore;

  readonly storeTransactions: StoreTransactions;
  readonly background: BackgroundWork;
  readonly queryGuard: QueryGuard;
  readonly cls: ClsTransactionBridge;
  readonly typeormTransactional: TypeormTransactionalBridge;
  readonly runner: TransactionRunner;
  readonly doorbell: Doorbell;
  readonly notifier: CommitNotifier;

  readonly sender: MessageSender;
  readonly checkHandlers: CheckHandlerRegistry;
  readonly ownership: DeliveryOwnership;
  readonly delivery: DeliveryRelay;
  readonly checks: CheckScheduler;
  readonly listener: PgNotificationListener;
  readonly pruner: Pruner;
  readonly inboxPruner: InboxPruner;
  readonly delayedTimer: DelayedMessageTimer;

  readonly schema: SchemaCheck;
  readonly preparedStatements: PreparedStatementsCheck;
  readonly pgGuard: PgConnectionGuard;

  /** The services an application uses (exported by the Nest module). */
  readonly context: TransactionContext;
  readonly producer: TransactionalMessageProducer;
  readonly inbox: TransactionalInbox;
  readonly relay: TransactionalMessageRelay;
  readonly admin: TransactionalMessageAdmin;
  readonly health: TransactionalMessageHealthIndicator;
  readonly metrics: TransactionalMessageMetrics;

  /**
   * @param lookup finds a provider of the application by token (the `@nestjs-cls/transactional`
   *   TransactionHost); without it, cls transactions are not joined.
   */
  constructor(
    readonly options: ResolvedOptions,
    lookup?: ProviderLookup,
  ) {
    const dialect = resolveDialect(options.dataSource);
    const notify = dialect.notifications && options.relay.listenNotify;
    this.identity = relayIdentity(options.producerGroup);
    this.publisher = options.publisher ?? (options.kafka ? new KafkaPublisher(options.kafka, options.producerGroup, options) : null);

    this.store = new MessageStore(dialect, options.tableName, notify ? `tm_${options.tableName}` : null, options.preparedStatements === true);
    this.checkStore = new CheckStore(this.store);
    this.adminStore = new AdminStore(this.store);
    this.retentionStore = new RetentionStore(this.store);
    this.inboxStore = new InboxStore(dialect, options.inbox.tableName);

    this.storeTransactions = new StoreTransactions(options);
    this.background = new BackgroundWork(this.storeTransactions, options);
    this.queryGuard = new QueryGuard(options);
    this.cls = new ClsTransactionBridge(options, lookup);
    this.typeormTransactional = new TypeormTransactionalBridge(options);
    this.runner = new TransactionRunner(options, this.cls, this.typeormTransactional);
    this.doorbell = new Doorbell();
    this.delayedTimer = new DelayedMessageTimer(options, this.background, new DelayedStore(this.store), this.doorbell);
    this.notifier = new CommitNotifier(options, this.store, this.doorbell, this.delayedTimer);

    this.sender = new MessageSender(options, this.runner, this.store, this.notifier);
    this.checkHandlers = new CheckHandlerRegistry();
    const bucketStore = new BucketStore(this.store, options.relay.onDead === 'hold', options.relay.retentionMs === 0);
    this.ownership = new BucketOwnership(options, this.identity, this.background, bucketStore, slotTransactionsOf(this.publisher));
    // Without a publisher the relay never starts (consumer-only, or relay.enabled: false without kafka).
    const vacuum = new DeadRowVacuum(dialect.vacuum(this.store.t), options.relay.vacuumAfterRows, this.background);
    this.delivery = new DeliveryRelay(options, this.publisher as MessagePublisher, this.ownership, this.doorbell, vacuum);
    this.checks = new CheckScheduler(options, this.identity, this.background, this.checkStore, this.checkHandlers, this.notifier);
    this.listener = new PgNotificationListener(options, this.store, this.doorbell);
    this.pruner = new Pruner(options, this.background, this.retentionStore);
    this.inboxPruner = new InboxPruner(options, this.background, this.inboxStore);

    this.schema = new SchemaCheck(options, this.store);
    this.preparedStatements = new PreparedStatementsCheck(options, this.store);
    this.pgGuard = new PgConnectionGuard(options);

    this.context = new TransactionContext(this.runner);
    this.producer = new TransactionalMessageProducer(options, this.runner, this.storeTransactions, this.store, this.sender, this.notifier);
    this.inbox = new TransactionalInbox(options, this.runner, this.inboxStore);
    this.relay = new TransactionalMessageRelay(options, this.delivery, this.checks, this.delayedTimer);
    this.admin = new TransactionalMessageAdmin(options, this.storeTransactions, this.adminStore, this.producer, this.notifier);
    this.health = new TransactionalMessageHealthIndicator(options, this.delivery, this.admin);
    this.metrics = new TransactionalMessageMetrics(options, this.admin);
  }

  /** Checks the DataSource and the message table, and puts the guards and adapters in place. */
  async init(): Promise<void> {
    await this.schema.verify();
    await this.preparedStatements.decide();
    this.pgGuard.install();
    await this.cls.connect();
    await this.typeormTransactional.connect();
    this.queryGuard.install();
  }

  /** Metrics and tracing, when their optional packages are installed and configured. */
  async instrument(): Promise<void> {
    await Promise.all([this.metrics.start(), loadTracing()]);
  }

  /** Starts the relay, the checks and pruning (as configured). */
  async start(): Promise<void> {
    const options = this.options;
    if (options.inbox.enabled && options.relay.autoStart) this.inboxPruner.start();
    if (!options.producer) {
      this.logger.log('Consumer-only instance (no producerGroup): the inbox and tag filtering, nothing is sent from here');
      return;
    }
    if (!options.relay.enabled) {
      this.logger.log('Relay disabled in this instance (relay.enabled: false): messages are stored, not published or checked here');
      return;
    }
    await this.verifyPublisher();
    this.relayStarted = true;
    this.warnAboutPoolSize();
    if (!options.relay.autoStart) {
      this.logger.log('Relay not started (relay.autoStart: false): TransactionalMessageRelay.drain() and runChecksNow() run it on demand');
      return;
    }
    await this.listener.start();
    this.delivery.start();
    this.delayedTimer.start();
    await this.checks.start();
    this.pruner.start();
    this.logger.log(`Relay ${this.identity} started`);
  }

  /** Stops everything that runs, in order; once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.metrics.stop();
    // Independent of each other, so one shutdownTimeoutMs bounds them together.
    const timeout = this.options.relay.shutdownTimeoutMs;
    await Promise.all([this.checks.stop(), this.delivery.stop(), this.delayedTimer.stop(timeout), this.pruner.stop(), this.inboxPruner.stop()]);
    await this.listener.stop();
    this.background.close();
    this.notifier.close();
    if (this.relayStarted) {
      await this.publisher?.close().catch((error: unknown) => this.logger.warn(`Publisher close failed: ${(error as Error)?.message ?? error}`));
      this.logger.log(`Relay ${this.identity} stopped`);
    }
  }

  /** Removes what `init()` put on the DataSource, once nothing runs. */
  release(): void {
    this.queryGuard.remove();
    this.pgGuard.uninstall();
  }

  /**
   * With the built-in Kafka publisher, connects at start, for up to 5 s: a configuration error
   * (authentication, authorization, TLS) fails the boot; an unreachable broker is only a warning
   * (the relay keeps trying, and messages are stored meanwhile).
   */
  private async verifyPublisher(): Promise<void> {
    const publisher = this.publisher;
    if (!this.options.kafka || !publisher) return;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      publisher.connect().then(
        () => 'connected' as const,
        (error: unknown) => ({ error }),
      ),
      new Promise<'waiting'>((resolve) => (timer = setTimeout(resolve, START_CONNECT_WAIT_MS, 'waiting'))),
    ]);
    clearTimeout(timer);
    if (outcome === 'connected') return;
    if (outcome === 'waiting') {
      this.logger.warn(`Kafka has not answered within ${START_CONNECT_WAIT_MS} ms of the boot; the relay keeps trying`);
      return;
    }
    if (outcome.error instanceof OptionalDependencyMissingError) throw outcome.error;
    if (publisher.classify(outcome.error).kind === 'config') throw new PublisherConfigurationError(describeError(outcome.error), outcome.error);
    this.logger.warn(`Kafka is not reachable at boot (${describeError(outcome.error)}); messages are stored, and published once it is`);
  }

  private warnAboutPoolSize(): void {
    const size = poolSize(this.options.dataSource);
    const { maxConnections } = this.options.relay;
    if (size === undefined || maxConnections < size) return;
    this.logger.warn(
      `The relay, the checks and pruning may hold up to ${maxConnections} connection(s) at once (relay.maxConnections), ` +
        `and the DataSource's pool has ${size}: business requests can then wait for a connection. Give the pool more ` +
        `connections than relay.maxConnections (PostgreSQL: extra.max; MySQL/MariaDB: extra.connectionLimit), or lower it.`,
    );
  }
}
