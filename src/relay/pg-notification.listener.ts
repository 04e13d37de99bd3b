import { Logger } from '@nestjs/common';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { MessageStore } from '../store/message.store.js';
import { standalonePgClient, type PgStandaloneClient as PgClient } from '../store/dialects/pg-standalone-client.js';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { Doorbell } from '../common/doorbell.js';

/**
 * @internal PostgreSQL: LISTENs on the message table's channel and rings the relay's doorbell on
 * every NOTIFY, so a message committed by another process is published without waiting for the
 * poll. The LISTEN connection is a connection of its own, made with the pool's settings but
 * outside the pool: it is held for the application's whole life, and taking it from the pool
 * would leave a pool of one with nothing for anybody else (the boot hung). Reconnects after a
 * failure; polling covers the gap.
 */
export class PgNotificationListener {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private client: PgClient | undefined;
  private running = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly store: MessageStore,
    private readonly doorbell: Doorbell,
  ) {}

  async start(): Promise<void> {
    if (!this.store.notifyChannel || this.running) return;
    this.running = true;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = standalonePgClient(this.options.dataSource, this.options.acquireTimeoutMs);
    if (!client) return;
    // Until it is ours, a failure is handled below; afterwards, by reconnect().
    client.on('error', (error) => this.reconnect(client, error));
    client.on('end', () => this.reconnect(client, new Error('connection ended')));
    client.on('notification', () => this.doorbell.ring());
    try {
      await client.connect();
      await client.query(`LISTEN "${this.store.notifyChannel}"`);
      if (!this.running) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.doorbell.ring(); // anything committed while we were not listening
    } catch (error) {
      await client.end().catch(() => undefined);
      if (!this.running) return;
      this.logger.warn(`LISTEN failed (${(error as Error)?.message ?? error}); relying on polling, retrying in 5 s`);
      this.retry = setTimeout(() => void this.connect(), 5_000).unref();
    }
  }

  private reconnect(client: PgClient, error: Error | undefined): void {
    if (this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    if (!this.running) return;
    this.logger.warn(`LISTEN connection lost (${error?.message ?? 'ended'}); reconnecting`);
    this.retry = setTimeout(() => void this.connect(), 1_000).unref();
  }
}
