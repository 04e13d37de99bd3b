import { Logger } from '@nestjs/common';
import { BackgroundWork } from '../context/background-work.js';
import { MessageStatus } from '../message/message-status.enum.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { RetentionStore } from '../store/retention.store.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { PeriodicTask } from './periodic-task.js';

/** @internal Deletes delivered and rolled-back messages after `relay.retentionMs`, in small batches. */
export class Pruner {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly task: PeriodicTask;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly runner: BackgroundWork,
    private readonly store: RetentionStore,
  ) {
    this.task = new PeriodicTask('Pruning', options.relay.pruneIntervalMs, (isRunning) => this.prune(isRunning), this.logger);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop(this.options.relay.shutdownTimeoutMs);
  }

  /** Prunes until nothing is due (or the relay stops). */
  private async prune(isRunning: () => boolean): Promise<void> {
    const { retentionMs, pruneBatchSize } = this.options.relay;
    let total = 0;
    for (const status of [MessageStatus.DELIVERED, MessageStatus.ROLLED_BACK] as const) {
      for (;;) {
        const deleted = await this.runner.independent('relay.prune', (m) => this.store.prune(m, status, retentionMs, pruneBatchSize));
        total += deleted;
        if (deleted < pruneBatchSize || !isRunning()) break;
      }
    }
    if (total > 0) this.logger.debug(`Pruned ${total} finished message(s)`);
  }
}
