import type { Logger } from '@nestjs/common';
import { isBackgroundStopped } from '../context/background-work.js';
import { Doorbell } from '../common/doorbell.js';

/**
 * @internal Runs `round` every `intervalMs` in the background until stopped, or after the ms a
 * round returns when it returns a number (sooner); `wake()` runs the next round at once. A failing
 * round is logged and the next one runs on schedule. `stop()` wakes the wait and waits for the
 * round in progress, at most `timeoutMs`.
 */
export class PeriodicTask {
  private readonly bell = new Doorbell();
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly round: (isRunning: () => boolean) => Promise<number | void>,
    private readonly logger: Logger,
  ) {}

  /** Runs the next round now (or right after the one in progress). */
  wake(): void {
    this.bell.ring();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(timeoutMs: number): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.bell.ring();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    while (this.running) {
      let wait = this.intervalMs;
      try {
        const next = await this.round(() => this.running);
        if (typeof next === 'number') wait = Math.min(wait, Math.max(0, next));
      } catch (error) {
        if (!this.running || isBackgroundStopped(error)) break;
        this.logger.error(`${this.name} failed: ${(error as Error)?.message ?? error}`);
      }
      if (this.running) await this.bell.wait(wait);
    }
  }
}
