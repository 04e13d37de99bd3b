import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { CheckScheduler } from '../check/check-scheduler.service.js';
import { InboxPruner } from '../consumer/inbox-pruner.service.js';
import { ClsTransactionBridge } from '../context/cls-transaction.bridge.js';
import { TypeormTransactionalBridge } from '../context/typeorm-transactional.bridge.js';
import { QueryGuard } from '../context/query-guard.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { TransactionalMessageExplorer } from '../transactional-message.explorer.js';
import { DuplicateModuleError } from '../errors/duplicate-module.error.js';
import { OptionalDependencyMissingError } from '../errors/optional-dependency-missing.error.js';
import { PublisherConfigurationError } from '../errors/publisher-configuration.error.js';
import { describeError } from '../errors/describe-error.js';
import type { MessagePublisher } from '../publisher/message-publisher.interface.js';
import { CommitNotifier } from '../context/commit-notifier.js';
import { DeliveryRelay } from '../relay/delivery-relay.service.js';
import { PgNotificationListener } from '../relay/pg-notification.listener.js';
import { Pruner } from '../relay/pruner.service.js';
import { PgConnectionGuard } from './pg-connection-guard.js';
import { poolSize } from '../store/dialects/pool-size.js';
import { PreparedStatementsCheck } from './prepared-statements.check.js';
import { SchemaCheck } from './schema-check.service.js';
import { LOGGER_CONTEXT, MESSAGE_PUBLISHER, RELAY_IDENTITY, RESOLVED_OPTIONS } from '../common/constants.js';
import { TransactionalMessageMetrics } from '../operations/metrics.service.js';
import { loadTracing } from '../telemetry/tracing.js';
import { BackgroundWork } from '../context/background-work.js';

/** How long the boot waits for the built-in Kafka publisher to connect. */
const BOOT_CONNECT_WAIT_MS = 5_000;

/**
 * @internal The one place that starts the module's parts, in a fixed order, and stops them in the
 * reverse order:
 *
 * - module init: check the DataSource and the message table (fail the boot with the fix), guard
 *   PostgreSQL connections, connect to `@nestjs-cls/transactional`, install the query guard, find
 *   the decorated methods and check handlers;
 * - application bootstrap: LISTEN, delivery, checks, pruning (when the relay runs here), inbox pruning;
 * - module destroy (the first shutdown hook, while the DataSource is open): stop the checks first
 *   (no new handler call; what no handler was called for is released, uncounted), then delivery
 *   (finish or release the batch in flight), pruning and LISTEN; then close background database
 *   access, so that nothing still in flight past `shutdownTimeoutMs` runs against the database,
 *   and only then disconnect the publisher (kafkajs does not wait for sends in flight);
 * - application shutdown: forget the decorated methods and check handlers and remove the query
 *   guard: nothing that could still call a check handler is running by then.
 */
@Injectable()
export class TransactionalMessageLifecycle implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private relayStarted = false;
  private stopped = false;

  constructor(
    @Inject(RESOLVED_OPTIONS) readonly options: ResolvedOptions,
    @Inject(MESSAGE_PUBLISHER) private readonly publisher: MessagePublisher | null,
    @Inject(RELAY_IDENTITY) private readonly identity: string,
    private readonly schema: SchemaCheck,
    private readonly preparedStatements: PreparedStatementsCheck,
    private readonly pgGuard: PgConnectionGuard,
    private readonly cls: ClsTransactionBridge,
    private readonly typeormTransactional: TypeormTransactionalBridge,
    private readonly queryGuard: QueryGuard,
    private readonly explorer: TransactionalMessageExplorer,
    private readonly listener: PgNotificationListener,
    private readonly delivery: DeliveryRelay,
    private readonly checks: CheckScheduler,
    private readonly pruner: Pruner,
    private readonly inboxPruner: InboxPruner,
    private readonly notifier: CommitNotifier,
    private readonly background: BackgroundWork,
    private readonly discovery: DiscoveryService,
    private readonly metrics: TransactionalMessageMetrics,
  ) {}

  /**
   * Once per module, also when the hooks run twice: an application and a microservice created from
   * one testing module (`moduleRef.createNestApplication()` and `createNestMicroservice()`) each
   * run the module's init and bootstrap hooks.
   */
  onModuleInit(): Promise<void> {
    return (this.initialised ??= this.init());
  }

  onApplicationBootstrap(): Promise<void> {
    return (this.bootstrapped ??= this.bootstrap());
  }

  private initialised: Promise<void> | undefined;
  private bootstrapped: Promise<void> | undefined;

  private async init(): Promise<void> {
    const names = this.registrationNames();
    await this.schema.verify();
    await this.preparedStatements.decide();
    this.pgGuard.install();
    await this.cls.connect();
    await this.typeormTransactional.connect();
    this.queryGuard.install();
    this.explorer.discover(names);
    await Promise.all([this.metrics.start(), loadTracing()]);
  }

  private async bootstrap(): Promise<void> {
    if (this.options.inbox.enabled && this.options.relay.autoStart) this.inboxPruner.start();
    if (!this.options.producer) {
      this.logger.log('Consumer-only instance (no producerGroup): the inbox and tag filtering, nothing is sent from here');
      return;
    }
    if (!this.options.relay.enabled) {
      this.logger.log('Relay disabled in this instance (relay.enabled: false): messages are stored, not published or checked here');
      return;
    }
    await this.verifyPublisher();
    this.relayStarted = true;
    this.warnAboutPoolSize();
    if (!this.options.relay.autoStart) {
      this.logger.log('Relay not started (relay.autoStart: false): TransactionalMessageRelay.drain() and runChecksNow() run it on demand');
      return;
    }
    await this.listener.start();
    this.delivery.start();
    await this.checks.start();
    this.pruner.start();
    this.logger.log(`Relay ${this.identity} started`);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.metrics.stop();
    // Independent of each other, so one shutdownTimeoutMs bounds them together.
    await Promise.all([this.checks.stop(), this.delivery.stop(), this.pruner.stop(), this.inboxPruner.stop()]);
    await this.listener.stop();
    this.background.close();
    this.notifier.close();
    if (this.relayStarted) {
      await this.publisher?.close().catch((error: unknown) => this.logger.warn(`Publisher close failed: ${(error as Error)?.message ?? error}`));
      this.logger.log(`Relay ${this.identity} stopped`);
    }
  }

  /**
   * The names of the module's registrations in this application; two of one name fail the boot
   * (a decorated method could not tell them apart), as do two on one DataSource's message table.
   */
  private registrationNames(): Set<string> {
    const registrations = this.discovery
      .getProviders()
      .map((wrapper) => wrapper.instance as unknown)
      .filter((instance): instance is TransactionalMessageLifecycle => instance instanceof TransactionalMessageLifecycle);
    const describe = (r: TransactionalMessageLifecycle) =>
      `'${r.options.name}': producer group '${r.options.producerGroup}' on a ${String(r.options.dataSource.options.type)} DataSource, table ${r.options.tableName}`;
    const sameName = registrations.filter((r) => r !== this && r.options.name === this.options.name);
    if (sameName.length > 0) throw new DuplicateModuleError([this, ...sameName].map(describe));
    const sameTable = registrations.filter(
      (r) => r !== this && r.options.producer && this.options.producer && r.options.dataSource === this.options.dataSource && r.options.tableName === this.options.tableName,
    );
    if (sameTable.length > 0) throw new DuplicateModuleError([this, ...sameTable].map(describe));
    return new Set(registrations.map((r) => r.options.name));
  }

  /**
   * With the built-in Kafka publisher, connects at boot, for up to 5 s: a configuration error
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
      new Promise<'waiting'>((resolve) => (timer = setTimeout(resolve, BOOT_CONNECT_WAIT_MS, 'waiting'))),
    ]);
    clearTimeout(timer);
    if (outcome === 'connected') return;
    if (outcome === 'waiting') {
      this.logger.warn(`Kafka has not answered within ${BOOT_CONNECT_WAIT_MS} ms of the boot; the relay keeps trying`);
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

  onApplicationShutdown(): void {
    this.explorer.forget();
    this.queryGuard.remove();
    this.pgGuard.uninstall();
  }
}
