/**
 * @internal One Kafka producer, connected on first use and replaced after a failure: the
 * lifecycle both Kafka publishers share. `start` connects a new producer; `stop` disconnects one
 * (its errors are ignored: the producer is being given up).
 */
export class ProducerSlot<P> {
  private producer: P | undefined;
  private connecting: Promise<P> | undefined;
  private closed = false;

  constructor(
    private readonly start: () => Promise<P>,
    private readonly stop: (producer: P) => Promise<void>,
  ) {}

  /** The connected producer; connects one when there is none (one connect at a time). */
  get(): Promise<P> {
    if (this.closed) return Promise.reject(new Error('The Kafka publisher is closed'));
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= this.start().then(
      (producer) => {
        this.producer = producer;
        this.connecting = undefined;
        return producer;
      },
      (error: unknown) => {
        this.connecting = undefined;
        throw error;
      },
    );
    return this.connecting;
  }

  /** Gives up the producer (after a failed send); the next `get()` connects a fresh one. */
  async reset(): Promise<void> {
    const producer = this.producer ?? (await this.connecting?.catch(() => undefined));
    this.producer = undefined;
    this.connecting = undefined;
    if (producer !== undefined) await this.stop(producer).catch(() => undefined);
  }

  /** Gives up the producer for good. */
  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }
}
