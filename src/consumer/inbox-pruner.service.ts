import { Inject, Injectable, Logger } from '@nestjs/common';
import { BackgroundWork } from '../lifecycle/background-work.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { PeriodicTask } from '../relay/periodic-task.js';
import { LOGGER_CONTEXT, RESOLVED_OPTIONS } from '../transactional-message.constants.js';
import { InboxStore } from './inbox.store.js';

/** @internal Deletes inbox records older than `inbox.retentionMs`, in small batches. */
@Injectable()
export class InboxPruner {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly task: PeriodicTask;

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    private readonly runner: BackgroundWork,
    private readonly store: InboxStore,
  ) {
    this.task = new PeriodicTask('Inbox pruning', options.inbox.pruneIntervalMs, (isRunning) => this.prune(isRunning), this.logger);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop(this.options.relay.shutdownTimeoutMs);
  }

  private async prune(isRunning: () => boolean): Promise<void> {
    const { retentionMs, pruneBatchSize } = this.options.inbox;
    while (isRunning()) {
      const deleted = await this.runner.independent('inbox.prune', (m) => this.store.prune(m, retentionMs, pruneBatchSize));
      if (deleted < pruneBatchSize) break;
    }
  }
}
