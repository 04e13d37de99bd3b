import { Logger } from '@nestjs/common';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT } from '../common/constants.js';

interface PgClientLike {
  on(event: 'error', listener: (error: Error) => void): void;
  listenerCount(event: 'error'): number;
}

/** The events of pg-pool's `Pool` the guard listens to (public API: https://node-postgres.com/apis/pool#events). */
interface PgPoolLike {
  on(event: 'acquire', listener: (client: PgClientLike) => void): void;
  removeListener(event: 'acquire', listener: (client: PgClientLike) => void): void;
}

/** Connections that have the listener (one per connection, whichever registration gave it). */
const protectedClients = new WeakSet<PgClientLike>();

/**
 * @internal PostgreSQL: gives every connection of the DataSource's pool an `error` listener from
 * the moment it is handed out. pg-pool takes its own listener off a connection when it is checked
 * out, and TypeORM adds one only after a promise resolves; a server message that ends the
 * connection in the same network read as its startup (`pg_terminate_backend`, a server shutdown)
 * is emitted in between, with no listener, and an unhandled `error` event ends the Node process.
 * The fault suite hit it (test/faults/RESULTS.md).
 *
 * Through pg-pool's public `acquire` event, which it emits for every checkout (new or idle
 * connection) before it removes its own listener: so there is no moment without one. This
 * listener only logs; the pool and TypeORM still discard the dead connection and fail its queries
 * as before.
 */
export class PgConnectionGuard {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly pools: PgPoolLike[] = [];
  private readonly guard = (client: PgClientLike) => this.protect(client);

  constructor(private readonly options: ResolvedOptions) {}

  install(): void {
    // TypeORM's PostgresDriver keeps its pools public as `master` and `slaves` (replication).
    const driver = this.options.dataSource.driver as unknown as { options: { type: string }; master?: PgPoolLike; slaves?: PgPoolLike[] };
    if (driver.options.type !== 'postgres') return;
    for (const pool of [driver.master, ...(driver.slaves ?? [])]) {
      if (!pool || typeof pool.on !== 'function') continue;
      pool.on('acquire', this.guard);
      this.pools.push(pool);
    }
  }

  uninstall(): void {
    for (const pool of this.pools.splice(0)) pool.removeListener('acquire', this.guard);
  }

  private protect(client: PgClientLike): void {
    if (protectedClients.has(client)) return;
    protectedClients.add(client);
    client.on('error', (error) => {
      // Say so only when nothing else handled it (the case that used to end the process).
      if (client.listenerCount('error') === 1) {
        this.logger.warn(`A PostgreSQL connection failed outside any query (${error.message}); the pool discards it`);
      }
    });
  }
}
