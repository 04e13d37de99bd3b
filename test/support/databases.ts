import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource, type DataSourceOptions, type MixedList } from 'typeorm';
import { transactionalMessageInboxMigrations, transactionalMessageMigrations } from '../../src/index.js';

/** The databases every integration test runs against. */
export type DatabaseKind = 'postgres' | 'mariadb' | 'sqlite';
export const DATABASE_KINDS: DatabaseKind[] = ['postgres', 'mariadb', 'sqlite'];

/** Loopback defaults; override with POSTGRES_URL / MARIADB_URL (an admin connection). */
export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const MARIADB_URL = process.env.MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test';

export interface TestDatabase {
  kind: DatabaseKind;
  dataSource: DataSource;
  /** Options to open another DataSource on the same database (a second "instance"). */
  options: DataSourceOptions;
  tableName: string;
  /** Destroys the DataSource and drops the database. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  entities?: MixedList<Function>;
  tableName?: string;
  /** Run the library's migrations (default true). */
  migrate?: boolean;
  /** An admin URL of another server of `kind` (default POSTGRES_URL / MARIADB_URL). */
  serverUrl?: string;
  /** Run the inbox's migrations too (default false). */
  inbox?: boolean;
}

/**
 * A fresh, empty database of `kind` for one test file, so test files run in parallel without
 * seeing each other's rows. Entities are synchronised; the message table comes from the
 * library's own migrations, as a user would create it.
 */
export async function createTestDatabase(kind: DatabaseKind, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = `tm_test_${randomBytes(5).toString('hex')}`;
  const tableName = options.tableName ?? 'transactional_message';
  const common = {
    entities: options.entities ?? [],
    synchronize: true,
    migrations: options.migrate === false ? [] : [...transactionalMessageMigrations({ tableName }), ...(options.inbox ? transactionalMessageInboxMigrations() : [])],
    migrationsRun: options.migrate !== false,
    logging: false,
  } as const;
  let dbOptions: DataSourceOptions;
  let cleanup: () => Promise<void>;
  if (kind === 'postgres') {
    const server = options.serverUrl ?? POSTGRES_URL;
    await adminQuery(kind, `CREATE DATABASE ${name}`, server);
    const url = new URL(server);
    url.pathname = `/${name}`;
    dbOptions = { type: 'postgres', url: url.toString(), ...common, extra: { max: 20 } };
    cleanup = () => adminQuery(kind, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`, server);
  } else if (kind === 'mariadb') {
    const server = options.serverUrl ?? MARIADB_URL;
    await adminQuery(kind, `CREATE DATABASE ${name}`, server);
    const url = new URL(server);
    url.pathname = `/${name}`;
    dbOptions = { type: 'mariadb', url: url.toString(), ...common, extra: { connectionLimit: 20 } };
    cleanup = () => adminQuery(kind, `DROP DATABASE IF EXISTS ${name}`, server);
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'tm-sqlite-'));
    dbOptions = { type: 'better-sqlite3', database: join(dir, `${name}.sqlite`), ...common };
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  }
  const dataSource = new DataSource(dbOptions);
  await dataSource.initialize();
  return {
    kind,
    dataSource,
    options: { ...dbOptions, synchronize: false, migrationsRun: false } as DataSourceOptions,
    tableName,
    async drop() {
      if (dataSource.isInitialized) await dataSource.destroy();
      await cleanup();
    },
  };
}

async function adminQuery(kind: 'postgres' | 'mariadb', sql: string, url: string): Promise<void> {
  const admin = new DataSource(kind === 'postgres' ? { type: 'postgres', url } : { type: 'mariadb', url });
  await admin.initialize();
  try {
    await admin.query(sql);
  } finally {
    await admin.destroy();
  }
}

/** Rows of the message table, oldest first, with times as returned by the driver. */
export async function messageRows(db: TestDatabase): Promise<Array<Record<string, any>>> {
  const q = db.kind === 'mariadb' ? (s: string) => `\`${s}\`` : (s: string) => `"${s}"`;
  return db.dataSource.query(`SELECT * FROM ${q(db.tableName)} ORDER BY ${q('seq')}`);
}
