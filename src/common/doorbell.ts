/**
 * @internal Wakes a relay loop early: rung when this process commits a message (and, on
 * PostgreSQL, when a NOTIFY arrives from another process). A ring while the loop is busy is kept,
 * so the next wait returns at once and no commit is left for the poll interval.
 */
export class Doorbell {
  private rung = false;
  private wake: (() => void) | undefined;

  ring(): void {
    this.rung = true;
    this.wake?.();
  }

  /** Resolves after `ms`, or at once when rung (since the last wait returned). */
  wait(ms: number): Promise<void> {
    if (this.rung) {
      this.rung = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      // Node fires a timer of 2^31 ms or more at once (with a warning): a long wait is cut to the largest.
      const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1));
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        self.rung = false;
        resolve();
      }
      this.wake = done;
    });
  }
}
