import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { MessageStore } from '../store/message.store.js';
import { LOGGER_CONTEXT, RESOLVED_OPTIONS } from '../transactional-message.constants.js';
import { Doorbell } from './doorbell.js';

interface PgClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification' | 'error', listener: (error: Error) => void): void;
  removeListener(event: 'notification' | 'error', listener: (error: Error) => void): void;
  release(error?: Error | boolean): void;
}

/** The listeners this class put on a connection, to take exactly those off again. */
const OWN = new WeakMap<PgClient, { notification: () => void; error: (error: Error) => void }>();

function detach(client: PgClient): void {
  const own = OWN.get(client);
  if (!own) return;
  client.removeListener('notification', own.notification);
  client.removeListener('error', own.error);
  OWN.delete(client);
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
      detach(client);
      await client.query('UNLISTEN *').catch(() => undefined);
      client.release();
    }
  }

  private async connect(): Promise<void> {
    const pool = (this.options.dataSource.driver as unknown as { master?: { connect(): Promise<PgClient> } }).master;
    if (!pool) return;
    let client: PgClient | undefined;
    try {
      client = await pool.connect();
      const own = { notification: () => this.doorbell.ring(), error: (error: Error) => this.reconnect(client!, error) };
      OWN.set(client, own);
      client.on('notification', own.notification);
      client.on('error', own.error);
      await client.query(`LISTEN "${this.store.notifyChannel}"`);
      if (!this.running) {
        detach(client);
        client.release();
        return;
      }
      this.client = client;
      this.doorbell.ring(); // anything committed while we were not listening
    } catch (error) {
      if (client) {
        // The connection failed under LISTEN: hand it back as broken (the pool discards it), never keep it checked out.
        detach(client);
        client.release(error as Error);
      }
      this.logger.warn(`LISTEN failed (${(error as Error).message}); relying on polling, retrying in 5 s`);
      if (this.running) this.retry = setTimeout(() => void this.connect(), 5_000).unref();
    }
  }

  private reconnect(client: PgClient, error: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    detach(client);
    client.release(error);
    if (!this.running) return;
    this.logger.warn(`LISTEN connection lost (${error.message}); reconnecting`);
    this.retry = setTimeout(() => void this.connect(), 1_000).unref();
  }
}
