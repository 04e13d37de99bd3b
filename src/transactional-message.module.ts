import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ClsTransactionBridge } from './context/cls-transaction.bridge.js';
import { TransactionContext } from './context/transaction-context.service.js';
import { TransactionRunner } from './context/transaction-runner.service.js';
import { resolveOptions } from './options/resolve-options.js';
import type { ResolvedOptions, TransactionalMessageModuleOptions } from './options/transactional-message-options.interface.js';
import { MessageSender } from './producer/message-sender.service.js';
import { TransactionalMessageExplorer } from './producer/transactional-message.explorer.js';
import { TransactionalMessageProducer } from './producer/transactional-message.producer.js';
import { resolveDialect } from './store/dialects/resolve-dialect.js';
import { MessageStore } from './store/message.store.js';
import { SchemaCheck } from './store/schema-check.service.js';
import { RESOLVED_OPTIONS } from './transactional-message.constants.js';
import { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } from './transactional-message.module-definition.js';

/**
 * Transactional messages for one TypeORM DataSource.
 *
 * ```ts
 * TransactionalMessageModule.forRootAsync({
 *   inject: [DataSource],
 *   useFactory: (dataSource: DataSource) => ({ dataSource, producerGroup: 'order-service' }),
 * })
 * ```
 *
 * Global by default (`isGlobal: false` to scope it). Exports `TransactionContext` and
 * `TransactionalMessageProducer`. Options are validated when the application boots.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: RESOLVED_OPTIONS,
      useFactory: (options: TransactionalMessageModuleOptions) => resolveOptions(options),
      inject: [MODULE_OPTIONS_TOKEN],
    },
    {
      provide: MessageStore,
      useFactory: (options: ResolvedOptions) => new MessageStore(resolveDialect(options.dataSource), options.tableName),
      inject: [RESOLVED_OPTIONS],
    },
    SchemaCheck,
    ClsTransactionBridge,
    TransactionRunner,
    MessageSender,
    TransactionContext,
    TransactionalMessageProducer,
    TransactionalMessageExplorer,
  ],
  exports: [TransactionContext, TransactionalMessageProducer],
})
export class TransactionalMessageModule extends ConfigurableModuleClass {}
