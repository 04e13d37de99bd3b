import { Global, Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ClientsModule, Transport, type ClientProxy } from '@nestjs/microservices';
import { ClientProxyPublisher, TransactionalMessageAdminModule, TransactionalMessageModule } from 'nestjs-transactional-message';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { CartController } from './cart/cart.controller.js';
import { CreditController } from './credit/credit.controller.js';
import { LogisticsController } from './logistics/logistics.controller.js';
import { LoopbackGuard } from './operations/loopback.guard.js';
import { OperationsController } from './operations/operations.controller.js';
import { OrdersController } from './orders/orders.controller.js';
import { OrdersService } from './orders/orders.service.js';
import { PaymentGateway } from './payments/payment-gateway.service.js';
import { Timeline } from './timeline.service.js';

export interface ShopConfig {
  database: DataSourceOptions;
  /** Where the messages go: Kafka (the built-in publisher) or RabbitMQ (a ClientProxy). */
  transport: 'kafka' | 'rabbitmq';
  kafkaBrokers: string[];
  rabbitmq: { url: string; queue: string };
  /** Demo timings (checks after half a second) instead of the library's production defaults. */
  fast: boolean;
}

/** The RabbitMQ client the relay publishes through (SHOP_TRANSPORT=rabbitmq). */
const SHOP_EVENTS = 'SHOP_EVENTS';

/** Closes the DataSource after everything else (the relay stops first, in onModuleDestroy). */
@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

@Global()
@Module({})
class DatabaseModule {
  static forRoot(options: DataSourceOptions): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [{ provide: DataSource, useFactory: () => new DataSource(options).initialize() }, DataSourceCloser],
      exports: [DataSource],
    };
  }
}

/** The whole shop in one application: orders and payments produce, logistics, credit and cart consume. */
@Module({})
export class AppModule {
  static forRoot(config: ShopConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        DatabaseModule.forRoot(config.database),
        TransactionalMessageModule.forRootAsync({
          // On RabbitMQ the relay publishes through a ClientProxy of @nestjs/microservices.
          imports: config.transport === 'rabbitmq' ? [ClientsModule.register([{ name: SHOP_EVENTS, transport: Transport.RMQ, options: { urls: [config.rabbitmq.url], queue: config.rabbitmq.queue, queueOptions: { durable: true } } }])] : [],
          inject: config.transport === 'rabbitmq' ? [DataSource, SHOP_EVENTS] : [DataSource],
          useFactory: (dataSource: DataSource, events?: ClientProxy) => ({
            dataSource,
            producerGroup: 'shop-orders',
            ...(events ? { publisher: new ClientProxyPublisher(events) } : { kafka: { brokers: config.kafkaBrokers, clientId: 'shop-orders' } }),
            inbox: { enabled: true },
            // Delivered messages kept a week (the default deletes them when delivered): the demo
            // and the dashboard show them.
            relay: { retentionMs: 7 * 86_400_000, ...(config.fast ? { pollIntervalMs: 200 } : {}) },
            ...(config.fast ? { checkImmunityMs: 500, check: { intervalMs: 500 } } : {}),
          }),
        }),
        TerminusModule,
        // The dashboard: the messages in doubt, their checks, replay and resolve.
        TransactionalMessageAdminModule.forRoot({ path: 'ops/messages', guard: LoopbackGuard }),
      ],
      controllers: [OrdersController, LogisticsController, CreditController, CartController, OperationsController],
      providers: [OrdersService, PaymentGateway, Timeline],
    };
  }
}
