import { Inject, Injectable, Logger } from '@nestjs/common';
import { TransactionRunner } from '../context/transaction-runner.service.js';
import { MessageStatus } from '../message/message-status.enum.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { RetentionStore } from '../store/retention.store.js';
import { LOGGER_CONTEXT, RESOLVED_OPTIONS } from '../transactional-message.constants.js';
import { Doorbell } from './doorbell.js';

/** @internal Deletes delivered and rolled-back messages after `relay.retentionMs`, in small batches. */
@Injectable()
export class Pruner {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly wake = new Doorbell();
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    private readonly runner: TransactionRunner,
    private readonly store: RetentionStore,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake.ring();
    await this.loop;
  }

  /** Prunes until nothing is due; returns how many messages were deleted. */
  async pruneOnce(): Promise<number> {
    const { retentionMs, pruneBatchSize } = this.options.relay;
    let total = 0;
    for (const status of [MessageStatus.DELIVERED, MessageStatus.ROLLED_BACK] as const) {
      for (;;) {
        const deleted = await this.runner.independent('relay.prune', (m) => this.store.prune(m, status, retentionMs, pruneBatchSize));
        total += deleted;
        if (deleted < pruneBatchSize || !this.running) break;
      }
    }
    return total;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const deleted = await this.pruneOnce();
        if (deleted > 0) this.logger.debug(`Pruned ${deleted} finished message(s)`);
      } catch (error) {
        this.logger.error(`Pruning failed: ${(error as Error)?.message ?? error}`);
      }
      if (this.running) await this.wake.wait(this.options.relay.pruneIntervalMs);
    }
  }
}
