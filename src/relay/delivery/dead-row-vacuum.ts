import { Logger } from '@nestjs/common';
import { LOGGER_CONTEXT } from '../../common/constants.js';
import { isBackgroundStopped, type BackgroundWork } from '../../context/background-work.js';
import { settlesWithin } from '../../common/within.js';
import { describeError } from '../../errors/describe-error.js';

/**
 * @internal Vacuums the message table (PostgreSQL) once the relay has deleted or marked
 * `relay.vacuumAfterRows` messages since the last time and has caught up (a claim came back short).
 * Each delivered message leaves a dead entry in the index of committed messages that every claim
 * reads from its head; while the relay keeps up with a trickle, PostgreSQL reads those few rows
 * with a bitmap scan that never marks the dead entries, so a claim's cost grows with the messages
 * delivered since the last vacuum (measured: 0.5 ms with 7,000 dead entries, 5–15 ms with 37,000,
 * against 0.05 ms right after a vacuum; bench/RESULTS.md, 2026-12-06), and autovacuum comes at most
 * once a minute. Not while it drains a backlog: its claims walk the index in order and mark the
 * dead entries as they pass, and a vacuum of a large table every 10,000 messages cost the drain a
 * fifth of its speed. One vacuum at a time, in the background, on a connection of the relay's
 * share; it does not block reads or writes.
 */
export class DeadRowVacuum {
  private sinceLast = 0;
  private running: Promise<void> | undefined;
  private warned = false;
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(
    /** The statement, or null where the database needs none. */
    private readonly statement: string | null,
    /** Rows between two vacuums; 0: never. */
    private readonly afterRows: number,
    private readonly runner: BackgroundWork,
  ) {}

  /** `rows` more messages were deleted or marked. */
  add(rows: number): void {
    this.sinceLast += rows;
  }

  /** The relay has caught up (a claim came back short): vacuums if enough messages were delivered since the last time. */
  caughtUp(): void {
    if (this.statement === null || this.afterRows === 0 || this.sinceLast < this.afterRows || this.running) return;
    this.sinceLast = 0;
    this.running = this.vacuum(this.statement).finally(() => (this.running = undefined));
  }

  /** Waits for a vacuum in progress, at most `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.running) await settlesWithin(this.running, timeoutMs);
  }

  private async vacuum(statement: string): Promise<void> {
    try {
      await this.runner.autocommit('relay.vacuum', (m) => m.query(statement));
    } catch (error) {
      if (isBackgroundStopped(error) || this.warned) return;
      this.warned = true;
      this.logger.warn(
        `${statement} failed (${describeError(error)}): the dead index entries of delivered messages wait for autovacuum, and claims slow ` +
          `down as they pile up. Run the relay as the table's owner, or set relay.vacuumAfterRows: 0 and tune autovacuum for the table. Said once.`,
      );
    }
  }
}
