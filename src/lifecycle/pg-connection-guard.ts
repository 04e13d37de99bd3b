import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT, RESOLVED_OPTIONS } from '../common/constants.js';

interface PgClientLike {
  on(event: 'error', listener: (error: Error) => void): void;
  listenerCount(event: 'error'): number;
}

interface PgPoolLike {
  on(event: 'connect', listener: (client: PgClientLike) => void): void;
  removeListener(event: 'connect', listener: (client: PgClientLike) => void): void;
  _clients?: PgClientLike[];
}

const GUARDED = Symbol('tm-pg-error-guard');

/**
 * @internal PostgreSQL: gives every connection of the DataSource's pool an `error` listener for
 * its whole life. pg-pool takes its own listener off a connection when it is checked out, and
 * TypeORM adds one only after a promise resolves; a server message that ends the connection in
 * the same network read as its startup (`pg_terminate_backend`, a server shutdown) is emitted in
 * between, with no listener, and an unhandled `error` event ends the Node process. The fault suite
 * hit it (test/faults/RESULTS.md). This listener only logs; the pool and TypeORM still discard the
 * dead connection and fail its queries as before.
 */
@Injectable()
export class PgConnectionGuard {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly pools: PgPoolLike[] = [];
  private readonly guard = (client: PgClientLike) => this.protect(client);

  constructor(@Inject(RESOLVED_OPTIONS) private readonly options: ResolvedOptions) {}

  install(): void {
    const driver = this.options.dataSource.driver as unknown as { options: { type: string }; master?: PgPoolLike; slaves?: PgPoolLike[] };
    if (driver.options.type !== 'postgres') return;
    for (const pool of [driver.master, ...(driver.slaves ?? [])]) {
      if (!pool || typeof pool.on !== 'function') continue;
      pool.on('connect', this.guard);
      for (const client of pool._clients ?? []) this.protect(client);
      this.pools.push(pool);
    }
  }

  uninstall(): void {
    for (const pool of this.pools.splice(0)) pool.removeListener('connect', this.guard);
  }

  private protect(client: PgClientLike): void {
    const marked = client as PgClientLike & { [GUARDED]?: true };
    if (marked[GUARDED]) return;
    marked[GUARDED] = true;
    client.on('error', (error) => {
      // Say so only when nothing else handled it (the case that used to end the process).
      if (client.listenerCount('error') === 1) {
        this.logger.warn(`A PostgreSQL connection failed outside any query (${error.message}); the pool discards it`);
      }
    });
  }
}
