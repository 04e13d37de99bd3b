import { Logger } from '@nestjs/common';
import { BackgroundWork } from '../context/background-work.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { PeriodicTask } from '../relay/periodic-task.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { InboxStore } from './inbox.store.js';

/** Below this deduplication window, the boot warns that redeliveries can run an effect again. */
const SHORT_INBOX_WINDOW_MS = 24 * 60 * 60 * 1000;

/** @internal Deletes inbox records older than `inbox.retentionMs`, in small batches. */
export class InboxPruner {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly task: PeriodicTask;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly runner: BackgroundWork,
    private readonly store: InboxStore,
  ) {
    this.task = new PeriodicTask('Inbox pruning', options.inbox.pruneIntervalMs, (isRunning) => this.prune(isRunning), this.logger);
  }

  start(): void {
    const { retentionMs } = this.options.inbox;
    if (retentionMs < SHORT_INBOX_WINDOW_MS) {
      this.logger.warn(
        `inbox.retentionMs is ${retentionMs} ms: a message delivered again after its inbox row is pruned runs its effect again. ` +
          `Redeliveries come as late as a consumer's uncommitted offsets are read again (a consumer down for a day) and a relay's ` +
          `republished batch (a lease after a lost mark). Keep it at least a day (default 14 days) unless the effects are idempotent themselves.`,
      );
    }
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
