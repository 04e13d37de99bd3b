import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transactionalMessageInboxMigrations, transactionalMessageMigrations } from 'nestjs-transactional-message';
import type { DataSourceOptions } from 'typeorm';
import { CartItem } from './cart/cart-item.entity.js';
import { CreditEntry } from './credit/credit-entry.entity.js';
import { Shipment } from './logistics/shipment.entity.js';
import { Order } from './orders/order.entity.js';

/** sample-app/data, where the embedded SQLite database lives. */
export const DATA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../data');

/**
 * The shop's database: SQLite in sample-app/data/shop.sqlite by default, or the database of
 * DATABASE_URL (postgres://..., mysql://... or mariadb://...). Business tables are synchronised
 * (it is a sample); the library's tables come from its migrations, as in a real application.
 */
export function databaseOptions(env: NodeJS.ProcessEnv = process.env): DataSourceOptions {
  const common = {
    entities: [Order, Shipment, CreditEntry, CartItem],
    migrations: [...transactionalMessageMigrations(), ...transactionalMessageInboxMigrations()],
    migrationsRun: true,
    synchronize: true,
    logging: false,
  };
  const url = env.DATABASE_URL;
  if (!url) {
    const database = env.SQLITE_FILE ?? resolve(DATA_DIR, 'shop.sqlite');
    mkdirSync(dirname(database), { recursive: true });
    return { type: 'better-sqlite3', database, ...common };
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { type: 'postgres', url, ...common };
  if (/^(mysql|mariadb):\/\//.test(url)) return { type: 'mariadb', url, ...common };
  throw new Error(`DATABASE_URL ${JSON.stringify(url.replace(/\/\/[^@]*@/, '//***@'))} is not supported: use postgres://..., mysql://... or mariadb://..., or leave it unset for SQLite`);
}
