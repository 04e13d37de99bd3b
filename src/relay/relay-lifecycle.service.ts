import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { CheckScheduler } from '../check/check-scheduler.service.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import type { MessagePublisher } from '../publisher/message-publisher.interface.js';
import { LOGGER_CONTEXT, MESSAGE_PUBLISHER, RELAY_IDENTITY, RESOLVED_OPTIONS } from '../transactional-message.constants.js';
import { DeliveryRelay } from './delivery-relay.service.js';
import { PgNotificationListener } from './pg-notification.listener.js';
import { Pruner } from './pruner.service.js';

/**
 * @internal Starts the relay (delivery, checks, pruning, LISTEN) once the application has booted,
 * and stops it first thing on shutdown, while the DataSource is still open: stop claiming, finish
 * or release the batch in flight, then disconnect the publisher (kafkajs does not wait for sends
 * in flight on disconnect, so the order matters).
 */
@Injectable()
export class RelayLifecycle implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private started = false;

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    @Inject(MESSAGE_PUBLISHER) private readonly publisher: MessagePublisher | null,
    @Inject(RELAY_IDENTITY) private readonly identity: string,
    private readonly delivery: DeliveryRelay,
    private readonly checks: CheckScheduler,
    private readonly pruner: Pruner,
    private readonly listener: PgNotificationListener,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.options.relay.enabled) {
      this.logger.log('Relay disabled in this instance (relay.enabled: false): messages are stored, not published or checked here');
      return;
    }
    this.started = true;
    await this.listener.start();
    this.delivery.start();
    await this.checks.start();
    this.pruner.start();
    this.logger.log(`Relay ${this.identity} started`);
  }

  async onModuleDestroy(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await Promise.all([this.delivery.stop(), this.checks.stop(), this.pruner.stop(), this.listener.stop()]);
    await this.publisher?.close().catch((error: unknown) => this.logger.warn(`Publisher close failed: ${(error as Error)?.message ?? error}`));
    this.logger.log(`Relay ${this.identity} stopped`);
  }
}
