import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CheckHandlerRegistry } from './check/check-handler.registry.js';
import { CheckScheduler } from './check/check-scheduler.service.js';
import { InboxStore } from './consumer/inbox.store.js';
import { InboxPruner } from './consumer/inbox-pruner.service.js';
import { TransactionalInbox } from './consumer/transactional-inbox.service.js';
import { TransactionalMessageInterceptor } from './consumer/transactional-message.interceptor.js';
import { ClsTransactionBridge } from './context/cls-transaction.bridge.js';
import { TypeormTransactionalBridge } from './context/typeorm-transactional.bridge.js';
import { TransactionContext } from './context/transaction-context.service.js';
import { TransactionRunner } from './context/transaction-runner.service.js';
import { StoreTransactions } from './context/store-transactions.js';
import { QueryGuard } from './context/query-guard.js';
import { BackgroundWork } from './context/background-work.js';
import { TransactionalMessageLifecycle } from './lifecycle/lifecycle.service.js';
import { resolveOptions } from './options/resolve-options.js';
import type { ResolvedOptions, TransactionalMessageModuleOptions } from './options/transactional-message-options.interface.js';
import { MessageSender } from './producer/message-sender.service.js';
import { TransactionalMessageExplorer } from './transactional-message.explorer.js';
import { TransactionalMessageProducer } from './producer/transactional-message.producer.js';
import { KafkaPublisher } from './publisher/kafka/kafka.publisher.js';
import { CommitNotifier } from './context/commit-notifier.js';
import { DeliveryRelay } from './relay/delivery-relay.service.js';
import { BucketOwnership } from './relay/ownership/bucket.ownership.js';
import { DELIVERY_OWNERSHIP, type DeliveryOwnership } from './relay/ownership/delivery-ownership.js';
import { BucketStore } from './store/bucket.store.js';
import { TransactionalMessageRelay } from './transactional-message.relay.js';
import { Doorbell } from './common/doorbell.js';
import { PgNotificationListener } from './relay/pg-notification.listener.js';
import { PgConnectionGuard } from './lifecycle/pg-connection-guard.js';
import { Pruner } from './relay/pruner.service.js';
import { relayIdentity } from './relay/relay-identity.js';
import { CheckStore } from './store/check.store.js';
import { resolveDialect } from './store/dialects/resolve-dialect.js';
import { MessageStore } from './store/message.store.js';
import { RetentionStore } from './store/retention.store.js';
import { AdminStore } from './store/admin.store.js';
import { TransactionalMessageAdmin } from './admin/transactional-message-admin.service.js';
import { TransactionalMessageMetrics } from './operations/metrics.service.js';
import { TransactionalMessageHealthIndicator } from './operations/health.indicator.js';
import { PreparedStatementsCheck } from './lifecycle/prepared-statements.check.js';
import { SchemaCheck } from './lifecycle/schema-check.service.js';
import { INSTANCE_NAME, MESSAGE_PUBLISHER, RELAY_IDENTITY, RESOLVED_OPTIONS } from './common/constants.js';
import { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } from './transactional-message.module-definition.js';

/**
 * Transactional messages for one TypeORM DataSource: the decorator, the explicit producer API,
 * and the relay that publishes committed messages to Kafka and runs transaction checks.
 *
 * ```ts
 * TransactionalMessageModule.forRootAsync({
 *   inject: [DataSource],
 *   useFactory: (dataSource: DataSource) => ({
 *     dataSource,
 *     producerGroup: 'order-service',
 *     kafka: { brokers: ['127.0.0.1:9092'] },
 *   }),
 * })
 * ```
 *
 * Global by default (`isGlobal: false` to scope it). Exports `TransactionContext`,
 * `TransactionalMessageProducer`, `TransactionalInbox` and the operators' services. Options are
 * validated when the application boots. Several DataSources: one registration each, named
 * (`forRoot({ name: 'archive', ... })`), whose services inject by token
 * (`@InjectTransactionalMessageProducer('archive')`) and whose decorated methods say
 * `{ instance: 'archive' }`, in the manner of `@nestjs/typeorm`'s named DataSources.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: RESOLVED_OPTIONS,
      useFactory: (options: TransactionalMessageModuleOptions, name: string) => resolveOptions(options, name),
      inject: [MODULE_OPTIONS_TOKEN, INSTANCE_NAME],
    },
    {
      provide: MessageStore,
      useFactory: (options: ResolvedOptions) => {
        const dialect = resolveDialect(options.dataSource);
        const notify = dialect.notifications && options.relay.listenNotify;
        return new MessageStore(dialect, options.tableName, notify ? `tm_${options.tableName}` : null, options.preparedStatements === true);
      },
      inject: [RESOLVED_OPTIONS],
    },
    {
      provide: DELIVERY_OWNERSHIP,
      useFactory: (options: ResolvedOptions, identity: string, runner: BackgroundWork, store: MessageStore): DeliveryOwnership =>
        new BucketOwnership(options, identity, runner, new BucketStore(store, options.relay.onDead === 'hold', options.relay.retentionMs === 0)),
      inject: [RESOLVED_OPTIONS, RELAY_IDENTITY, BackgroundWork, MessageStore],
    },
    { provide: CheckStore, useFactory: (store: MessageStore) => new CheckStore(store), inject: [MessageStore] },
    { provide: AdminStore, useFactory: (store: MessageStore) => new AdminStore(store), inject: [MessageStore] },
    TransactionalMessageAdmin,
    TransactionalMessageMetrics,
    TransactionalMessageHealthIndicator,
    { provide: RetentionStore, useFactory: (store: MessageStore) => new RetentionStore(store), inject: [MessageStore] },
    { provide: Doorbell, useFactory: () => new Doorbell() },
    CommitNotifier,
    {
      provide: InboxStore,
      useFactory: (options: ResolvedOptions) => new InboxStore(resolveDialect(options.dataSource), options.inbox.tableName),
      inject: [RESOLVED_OPTIONS],
    },
    TransactionalInbox,
    InboxPruner,
    TransactionalMessageInterceptor,
    {
      provide: MESSAGE_PUBLISHER,
      useFactory: (options: ResolvedOptions) =>
        options.publisher ?? (options.kafka ? new KafkaPublisher(options.kafka, options.producerGroup) : null),
      inject: [RESOLVED_OPTIONS],
    },
    {
      provide: RELAY_IDENTITY,
      useFactory: (options: ResolvedOptions) => relayIdentity(options.producerGroup),
      inject: [RESOLVED_OPTIONS],
    },
    SchemaCheck,
    PreparedStatementsCheck,
    ClsTransactionBridge,
    TypeormTransactionalBridge,
    TransactionRunner,
    StoreTransactions,
    QueryGuard,
    BackgroundWork,
    MessageSender,
    TransactionContext,
    TransactionalMessageProducer,
    CheckHandlerRegistry,
    TransactionalMessageExplorer,
    DeliveryRelay,
    CheckScheduler,
    TransactionalMessageRelay,
    Pruner,
    PgNotificationListener,
    PgConnectionGuard,
    TransactionalMessageLifecycle,
  ],
  // Exports: by class (the default registration) or by tokens of its name, added by forRoot() (module-definition).
})
export class TransactionalMessageModule extends ConfigurableModuleClass {}
