// Durations of 2^31 ms (about 24.8 days) and more reach the database as they are: a retention of
// 30 days or a year, check.maxAgeMs of 30 days and the operator's olderThanMs filter select
// exactly the rows older than them, on every database. (PostgreSQL once bound them as int4:
// pruning failed every time and no half message ever expired.)
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import type { INestApplicationContext } from '@nestjs/common';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MessageStatus,
  TransactionalInbox,
  TransactionalMessageAdmin,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  transactionalMessageInboxMigrations,
  type MessagePublisher,
} from '../src/index.js';
import { CLI_SCRIPT as CLI } from './support/cli.js';
import { createTestDatabase, DATABASE_KINDS, type DatabaseKind, type TestDatabase } from './support/databases.js';
import { eventually } from './support/kafka.js';

const DAY_MS = 86_400_000;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Nothing is published in this test; the relay runs for its pruning and its checks. */
const idle: MessagePublisher = { connect: async () => undefined, publish: async () => undefined, classify: () => ({ kind: 'unknown' }), close: async () => undefined };

/** `column = now - days` in the database's own clock and SQL. */
function daysAgo(kind: DatabaseKind, days: number): string {
  if (kind === 'postgres') return `statement_timestamp() - make_interval(days => ${days})`;
  if (kind === 'mariadb') return `UTC_TIMESTAMP(3) - INTERVAL ${days} DAY`;
  return `strftime('%Y-%m-%d %H:%M:%f', 'now', '-${days} days')`;
}

describe.each(DATABASE_KINDS)('durations of 30 days and a year on %s', (kind) => {
  let db: TestDatabase;
  const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    for (const Migration of transactionalMessageInboxMigrations()) await new Migration().up(db.dataSource.createQueryRunner());
  });

  afterAll(async () => {
    await db?.drop();
  });

  it.each([30, 365])('%i days: retention prunes, check.maxAgeMs expires, the inbox forgets, olderThanMs selects just past the limit', async (days) => {
    const limitMs = days * DAY_MS;
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: `long-${days}`,
          publisher: idle,
          relay: { retentionMs: limitMs, pruneIntervalMs: 20, pollIntervalMs: 20 },
          check: { maxAgeMs: limitMs },
          inbox: { enabled: true, retentionMs: limitMs, pruneIntervalMs: 20 },
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    const app: INestApplicationContext = await moduleRef.init();
    try {
      const producer = app.get(TransactionalMessageProducer);
      const admin = app.get(TransactionalMessageAdmin);
      const t = q(db.tableName);
      /** A half message, set to `status` with its times `age` days back. */
      const stored = async (status: MessageStatus, age: number): Promise<string> => {
        const id = await producer.sendHalfMessage({ topic: `long.${days}`, key: `k-${status}-${age}`, body: { age }, checkImmunityMs: 2_000_000_000 });
        const when = daysAgo(kind, age);
        await db.dataSource.query(
          `UPDATE ${t} SET ${q('status')} = '${status}', ${q('created_at')} = ${when}, ${q('delivered_at')} = ${status === MessageStatus.DELIVERED ? when : 'NULL'}, ` +
            `${q('transaction_ended_at')} = ${status === MessageStatus.HALF ? 'NULL' : when} WHERE ${q('id')} = '${id}'`,
        );
        return id;
      };
      const older = days + 1;
      const younger = days - 1;
      // The operator's filter, before anything is pruned or expired: DEAD rows either side of the limit.
      const deadOld = await stored(MessageStatus.DEAD, older);
      const deadYoung = await stored(MessageStatus.DEAD, younger);
      expect((await admin.list({ status: 'DEAD', olderThanMs: limitMs })).messages.map((m) => m.id)).toEqual([deadOld]);
      expect(await admin.count({ status: 'DEAD', olderThanMs: limitMs })).toEqual({ DEAD: 1 });
      expect(await admin.replayDead({ olderThanMs: limitMs + DAY_MS * 2 })).toBe(0);
      const run = cliList(db, limitMs);
      expect(run.err).toBe('');
      expect(run.code).toBe(0);
      expect(JSON.parse(run.out).messages.map((m: { id: string }) => m.id)).toEqual([deadOld]);
      expect(await admin.purge({ status: MessageStatus.DEAD, olderThanMs: limitMs })).toBe(1);
      expect((await producer.getMessage(deadYoung))?.status).toBe(MessageStatus.DEAD);

      // Retention: delivered and rolled-back messages past it are deleted, the younger ones stay.
      const delivered = { old: await stored(MessageStatus.DELIVERED, older), young: await stored(MessageStatus.DELIVERED, younger) };
      const rolledBack = { old: await stored(MessageStatus.ROLLED_BACK, older), young: await stored(MessageStatus.ROLLED_BACK, younger) };
      // check.maxAgeMs: a half message older than it is rolled back without a check, a younger one waits.
      const half = { old: await stored(MessageStatus.HALF, older), young: await stored(MessageStatus.HALF, younger) };
      // inbox.retentionMs: inbox records past it are forgotten.
      const inbox = app.get(TransactionalInbox);
      await inbox.process('long', `old-${days}`, async () => undefined);
      await inbox.process('long', `young-${days}`, async () => undefined);
      const inboxTable = q('transactional_message_inbox');
      await db.dataSource.query(`UPDATE ${inboxTable} SET ${q('received_at')} = ${daysAgo(kind, older)} WHERE ${q('message_id')} = 'old-${days}'`);
      await db.dataSource.query(`UPDATE ${inboxTable} SET ${q('received_at')} = ${daysAgo(kind, younger)} WHERE ${q('message_id')} = 'young-${days}'`);

      await eventually('the messages past the retention pruned', async () => !(await producer.getMessage(delivered.old)) && !(await producer.getMessage(rolledBack.old)));
      expect((await producer.getMessage(delivered.young))?.status).toBe(MessageStatus.DELIVERED);
      expect((await producer.getMessage(rolledBack.young))?.status).toBe(MessageStatus.ROLLED_BACK);
      await eventually('the half message past check.maxAgeMs rolled back', async () => (await producer.getMessage(half.old))?.status === MessageStatus.ROLLED_BACK);
      expect((await producer.getMessage(half.old))?.lastError).toBe(`no decision within check.maxAgeMs (${limitMs} ms)`);
      expect((await producer.getMessage(half.young))?.status).toBe(MessageStatus.HALF);
      const inboxIds = async () => (await db.dataSource.query(`SELECT ${q('message_id')} AS id FROM ${inboxTable} WHERE ${q('consumer')} = 'long'`)).map((r: { id: string }) => r.id);
      await eventually('the inbox record past inbox.retentionMs pruned', async () => !(await inboxIds()).includes(`old-${days}`));
      expect(await inboxIds()).toContain(`young-${days}`);
    } finally {
      await app.close();
      await db.dataSource.query(`DELETE FROM ${q(db.tableName)}`);
    }
  });
});

/** `list --status DEAD --older-than <ms> --json` with the built CLI, on a DataSource file of `db`. */
function cliList(db: TestDatabase, olderThanMs: number): { code: number; out: string; err: string } {
  const dir = join(ROOT, '.cache', 'cli-test');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `data-source-${randomBytes(4).toString('hex')}.mjs`);
  writeFileSync(file, `import { DataSource } from 'typeorm';\nexport const dataSource = new DataSource(${JSON.stringify({ ...db.options, entities: [], migrations: [] })});\n`);
  const result = spawnSync(process.execPath, [CLI, 'list', '-d', file, '--status', 'DEAD', '--older-than', String(olderThanMs), '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return { code: result.status ?? 1, out: result.stdout, err: result.stderr };
}
