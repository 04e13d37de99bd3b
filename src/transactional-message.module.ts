import { Module } from '@nestjs/common';
import { DiscoveryModule, ModuleRef } from '@nestjs/core';
import { TransactionalMessageAdmin } from './admin/transactional-message-admin.service.js';
import { INSTANCE_NAME, RESOLVED_OPTIONS } from './common/constants.js';
import { TransactionalInbox } from './consumer/transactional-inbox.service.js';
import { TransactionalMessageInterceptor } from './consumer/transactional-message.interceptor.js';
import { TransactionContext } from './context/transaction-context.service.js';
import { TransactionalMessageEngine } from './engine/transactional-message.engine.js';
import { TransactionalMessageRelay } from './engine/transactional-message.relay.js';
import { TransactionalMessageLifecycle } from './lifecycle/lifecycle.service.js';
import { TransactionalMessageHealthIndicator } from './operations/health.indicator.js';
import { resolveOptions } from './options/resolve-options.js';
import type { ResolvedOptions, TransactionalMessageModuleOptions } from './options/transactional-message-options.interface.js';
import { TransactionalMessageProducer } from './producer/transactional-message.producer.js';
import { TransactionalMessageExplorer } from './transactional-message.explorer.js';
import { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } from './transactional-message.module-definition.js';

/** A service of the registration's engine, provided under its class. */
const fromEngine = <T>(provide: abstract new (...args: never[]) => T, service: (engine: TransactionalMessageEngine) => T) => ({
  provide,
  useFactory: service,
  inject: [TransactionalMessageEngine],
});

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
      provide: TransactionalMessageEngine,
      // The application's providers, for the adapters that join another library's transactions.
      useFactory: (options: ResolvedOptions, moduleRef: ModuleRef) =>
        new TransactionalMessageEngine(options, (token) => moduleRef.get(token as never, { strict: false })),
      inject: [RESOLVED_OPTIONS, ModuleRef],
    },
    fromEngine(TransactionContext, (engine) => engine.context),
    fromEngine(TransactionalMessageProducer, (engine) => engine.producer),
    fromEngine(TransactionalInbox, (engine) => engine.inbox),
    fromEngine(TransactionalMessageRelay, (engine) => engine.relay),
    fromEngine(TransactionalMessageAdmin, (engine) => engine.admin),
    fromEngine(TransactionalMessageHealthIndicator, (engine) => engine.health),
    TransactionalMessageInterceptor,
    TransactionalMessageExplorer,
    TransactionalMessageLifecycle,
  ],
  // Exports: by class (the default registration) or by tokens of its name, added by forRoot() (module-definition).
})
export class TransactionalMessageModule extends ConfigurableModuleClass {}
