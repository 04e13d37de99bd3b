import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { MessageStatus, transactionalMessageMigrations, TransactionalMessageProducer } from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { createShopApp, OrderService, ShopOrder } from './support/shop.fixture.js';

describe.each(DATABASE_KINDS)('message table migrations on %s', (kind) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(kind, { entities: [ShopOrder], migrate: false });
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('run as TypeORM migrations: up once, recorded, and down again', async () => {
    const dataSource = new DataSource({
      ...db.options,
      migrations: transactionalMessageMigrations({ tableName: 'order_messages' }),
    } as never);
    await dataSource.initialize();
    try {
      expect((await dataSource.runMigrations()).map((m) => m.name)).toEqual([
        'CreateTransactionalMessageTable_order_messages1763800000000',
        'AddTransactionalMessageDeadKeyIndex_order_messages1764600000000',
        'AddTransactionalMessageOperatorIndex_order_messages1764700000000',
        'AddTransactionalMessageKeyBuckets_order_messages1764800000000',
        'RetireTransactionalMessageRowLeases_order_messages1765000000000',
        'AddTransactionalMessageDelayedMessages_order_messages1765100000000',
      ]);
      expect(await dataSource.runMigrations()).toEqual([]); // already applied
      const runner = dataSource.createQueryRunner();
      expect(await runner.hasTable('order_messages')).toBe(true);
      expect(await runner.hasTable('order_messages_check')).toBe(true);
      expect(await runner.hasTable('order_messages_key_lock')).toBe(kind === 'mariadb');
      expect(await runner.hasTable('order_messages_bucket')).toBe(true);
      expect(await runner.hasTable('order_messages_relay')).toBe(true);
      expect(await runner.hasColumn('order_messages', 'bucket')).toBe(true);
      expect(Number((await dataSource.query('SELECT COUNT(*) AS n FROM order_messages_bucket'))[0].n)).toBe(256);
      // The fifth: a relay of the row-lease design sees a relay announced for good, and holds off.
      const marker = "SELECT COUNT(*) AS n FROM order_messages_relay WHERE owner = 'retired:row-lease-relays'";
      expect(Number((await dataSource.query(marker))[0].n)).toBe(1);
      // The sixth: the due time of delayed messages. Its down leaves a waiting DELAYED message
      // COMMITTED with its due time as its next attempt: an earlier version's relay still waits for it.
      expect(await runner.hasColumn('order_messages', 'deliver_at')).toBe(true);
      const bytes = kind === 'postgres' ? "decode('7b7d', 'hex')" : "X'7b7d'";
      const due = "'2999-01-01 00:00:00'";
      await dataSource.query(
        'INSERT INTO order_messages (id, producer_group, topic, body, content_type, status, created_at, check_immunity_ms, next_attempt_at, deliver_at) ' +
          `VALUES ('0190f7a6-0000-7000-8000-000000000001', 'shop', 'order.reminder', ${bytes}, 'application/json', 'DELAYED', ${due}, 0, ${due}, ${due})`,
      );
      await dataSource.undoLastMigration();
      expect(await runner.hasColumn('order_messages', 'deliver_at')).toBe(false);
      const [kept] = await dataSource.query('SELECT status, next_attempt_at FROM order_messages');
      expect(kept.status).toBe('COMMITTED');
      expect(String(kept.next_attempt_at instanceof Date ? kept.next_attempt_at.toISOString() : kept.next_attempt_at)).toMatch(/^2999-01-01/);
      await dataSource.query('DELETE FROM order_messages');
      await dataSource.undoLastMigration();
      expect(Number((await dataSource.query(marker))[0].n)).toBe(0);
      await dataSource.undoLastMigration();
      expect(await runner.hasTable('order_messages_bucket')).toBe(false);
      expect(await runner.hasColumn('order_messages', 'bucket')).toBe(false);
      await dataSource.undoLastMigration();
      await dataSource.undoLastMigration();
      await dataSource.undoLastMigration();
      expect(await runner.hasTable('order_messages')).toBe(false);
      expect(await runner.hasTable('order_messages_check')).toBe(false);
      expect(await runner.hasTable('order_messages_key_lock')).toBe(false);
      await runner.release();
    } finally {
      await dataSource.destroy();
    }
  });

  it('a table with a custom name serves the module', async () => {
    const custom = await createTestDatabase(kind, { entities: [ShopOrder], tableName: 'shop_outbox' });
    let app: INestApplicationContext | undefined;
    try {
      app = await createShopApp(custom);
      const id = randomUUID();
      await app.get(OrderService).pay({ id, amount: 1 });
      const [row] = await custom.dataSource.query(`SELECT id, status FROM shop_outbox`);
      expect(row.status).toBe(MessageStatus.COMMITTED);
      expect((await app.get(TransactionalMessageProducer).getMessage(row.id))?.key).toBe(id);
    } finally {
      await app?.close();
      await custom.drop();
    }
  });
});

describe('the relay-facing indexes on postgres', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('live-work indexes are partial, so they do not hold the delivered history', async () => {
    const rows: Array<{ indexname: string; indexdef: string }> = await db.dataSource.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'transactional_message' ORDER BY indexname`,
    );
    const byName = Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef]));
    expect(byName.transactional_message_half_due_idx).toMatch(/WHERE \(\(status\)::text = 'HALF'::text\)/);
    expect(byName.transactional_message_committed_seq_idx).toMatch(/WHERE \(\(status\)::text = 'COMMITTED'::text\)/);
    expect(byName.transactional_message_committed_key_idx).toMatch(/\(message_key, seq\) WHERE \(\(status\)::text = 'COMMITTED'::text\)/);
    expect(byName.transactional_message_id_key).toMatch(/UNIQUE INDEX/);
  });
});
