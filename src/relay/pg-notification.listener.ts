import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { MessageStore } from '../store/message.store.js';
import { LOGGER_CONTEXT, RESOLVED_OPTIONS } from '../transactional-message.constants.js';
import { Doorbell } from './doorbell.js';

interface PgClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', listener: () => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  removeAllListeners(): void;
  release(error?: Error | boolean): void;
}

/**
 * @internal PostgreSQL: LISTENs on the message table's channel on one connection of the
 * DataSource's pool, and rings the relay's doorbell on every NOTIFY, so a message committed by
 * another process is published without waiting for the poll. Reconnects after a failure.
 */
@Injectable()
export class PgNotificationListener {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private client: PgClient | undefined;
  private running = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
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
    if (client) {
      client.removeAllListeners();
      await client.query('UNLISTEN *').catch(() => undefined);
      client.release();
    }
  }

  private async connect(): Promise<void> {
    const pool = (this.options.dataSource.driver as unknown as { master?: { connect(): Promise<PgClient> } }).master;
    if (!pool) return;
    try {
      const client = await pool.connect();
      client.on('notification', () => this.doorbell.ring());
      client.on('error', (error) => this.reconnect(client, error));
      await client.query(`LISTEN "${this.store.notifyChannel}"`);
      if (!this.running) {
        client.removeAllListeners();
        client.release();
        return;
      }
      this.client = client;
      this.doorbell.ring(); // anything committed while we were not listening
    } catch (error) {
      this.logger.warn(`LISTEN failed (${(error as Error).message}); relying on polling, retrying in 5 s`);
      this.retry = setTimeout(() => void this.connect(), 5_000).unref();
    }
  }

  private reconnect(client: PgClient, error: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners();
    client.release(error);
    if (!this.running) return;
    this.logger.warn(`LISTEN connection lost (${error.message}); reconnecting`);
    this.retry = setTimeout(() => void this.connect(), 1_000).unref();
  }
}
