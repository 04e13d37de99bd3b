/** @internal A FIFO counting semaphore: at most `permits` holders of `run` at once. */
export class Semaphore {
  private readonly waiting: Array<() => void> = [];
  private available: number;

  constructor(permits: number) {
    this.available = permits;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.available > 0) this.available--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.available++;
    }
  }
}
