import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { jest } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createShopApp } from './support/shop.fixture.js';

/**
 * A connection that pg-pool has handed out and TypeORM has not yet taken (a promise in between)
 * has no `error` listener; an error emitted then (a server message in the same network read as
 * the startup, e.g. pg_terminate_backend) used to end the process. The fault suite hit it.
 */
describe('PostgreSQL: an error on a pooled connection with no other listener', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });

  afterAll(() => db?.drop());

  type Pool = { connect(): Promise<{ emit(e: string, x: Error): boolean; listenerCount(e: string): number; release(e?: Error): void }> };
  const pool = () => (db.dataSource.driver as unknown as { master: Pool }).master;

  it('without the library, an unhandled error event throws (the crash)', async () => {
    const client = await pool().connect();
    try {
      expect(client.listenerCount('error')).toBe(0);
      expect(() => client.emit('error', new Error('terminating connection due to administrator command'))).toThrow('administrator command');
    } finally {
      client.release(new Error('discard'));
    }
  });

  it('with the module, the error is logged and the connection discarded, the process lives on', async () => {
    const app = await createShopApp(db);
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      // Every connection gets the listener when the pool hands it out (new or idle since boot).
      const clients = await Promise.all([pool().connect(), pool().connect(), pool().connect()]);
      for (const client of clients) {
        expect(client.listenerCount('error')).toBe(1);
        expect(() => client.emit('error', new Error('terminating connection due to administrator command'))).not.toThrow();
        client.release(new Error('discard'));
      }
      expect(warn.mock.calls.filter(([text]) => String(text).includes('A PostgreSQL connection failed outside any query'))).toHaveLength(3);
      // The DataSource still works.
      expect(await db.dataSource.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      warn.mockRestore();
      await app.close();
    }
  });
});
