import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import type { INestApplicationContext } from '@nestjs/common';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { MessageStatus, TransactionalMessageModule, TransactionalMessageProducer, TransactionalMessageRelay, TransactionStatus, transactionalMessageMigrations } from '../src/index.js';
import { CLI_SCRIPT as CLI } from './support/cli.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { ControlledPublisher, InjectedFailure } from './support/relay.fixture.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the built CLI as an operator would. */
function cli(...args: string[]): { code: number; out: string; err: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  return { code: result.status ?? 1, out: result.stdout, err: result.stderr };
}

describe.each(DATABASE_KINDS)('the CLI on %s (npx nestjs-transactional-message)', (kind) => {
  let db: TestDatabase;
  let file: string;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('dist/cjs/cli/main.js is missing: run the tests with `bash scripts/test.sh` (it builds the package)');
    db = await createTestDatabase(kind, { migrate: false });
    // A DataSource file as an application has one (the CLI's --data-source).
    const dir = join(ROOT, '.cache', 'cli-test');
    mkdirSync(dir, { recursive: true });
    file = join(dir, `data-source-${randomBytes(4).toString('hex')}.mjs`);
    const options = { ...db.options, entities: [], migrations: [] };
    writeFileSync(file, `import { DataSource } from 'typeorm';\nexport const dataSource = new DataSource(${JSON.stringify(options)});\n`);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('migrate creates the tables once; status, list, replay and resolve work on what waits', async () => {
    const first = cli('migrate', '-d', file, '--json');
    expect(first.err).toBe('');
    expect(JSON.parse(first.out).ran).toEqual(transactionalMessageMigrations().map((m) => new m().name));
    expect(cli('migrate', '-d', file).out.trim()).toBe('nothing to run: up to date');

    // An application writes: one message DEAD, one HALF.
    const publisher = new ControlledPublisher();
    publisher.inject = () => new InjectedFailure('refused', { kind: 'message', retriable: false });
    const moduleRef = await Test.createTestingModule({
      imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'shop', publisher, relay: { autoStart: false } })],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
    const producer = app.get(TransactionalMessageProducer);
    const dead = (await producer.sendMessageInTransaction({ topic: 'cli.orders', key: 'k', body: {} }, () => TransactionStatus.COMMIT)).messageId;
    await app.get(TransactionalMessageRelay).drain();
    const half = await producer.sendHalfMessage({ topic: 'cli.orders', key: 'h', body: {} });

    const status = JSON.parse(cli('status', '-d', file, '--json').out);
    expect(status.counts).toMatchObject({ DEAD: 1, HALF: 1, COMMITTED: 0 });
    const listed = cli('list', '-d', file, '--status', 'DEAD');
    expect(listed.out).toContain(dead);
    expect(listed.out).toContain('refused');
    expect(JSON.parse(cli('list', '-d', file, '--json').out).messages.map((m: { id: string }) => m.id)).toEqual([dead, half]);

    expect(cli('replay', '-d', file, '--topic', 'cli.orders').out.trim()).toBe('replayed 1 message(s)');
    expect((await producer.getMessage(dead))?.status).toBe(MessageStatus.COMMITTED);
    expect(cli('resolve', half, '-d', file, '--rollback').out.trim()).toBe(`${half}: rolled back`);
    expect((await producer.getMessage(half))?.status).toBe(MessageStatus.ROLLED_BACK);

    // What cannot be done is said, and changes nothing.
    const notDead = cli('replay', dead, '-d', file);
    expect(notDead.out).toContain(`replayed 0 message(s)\nnot DEAD (left as they are): ${dead}`);
    expect((await producer.getMessage(dead))?.status).toBe(MessageStatus.COMMITTED);
    const ended = cli('resolve', half, '-d', file, '--commit');
    expect(ended.code).toBe(1);
    expect(ended.err).toContain(`Cannot commit message ${half}: its transaction already ended and the message is ROLLED_BACK`);
    expect((await producer.getMessage(half))?.status).toBe(MessageStatus.ROLLED_BACK);
  });

  it('--version prints the package version (of the file the package names as its bin)', () => {
    const { version, bin } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    expect(join(ROOT, bin['nestjs-transactional-message'])).toBe(CLI);
    for (const flag of ['--version', '-V']) {
      const printed = cli(flag);
      expect(printed.code).toBe(0);
      expect(printed.out.trim()).toBe(version);
    }
  });

  it('says what is wrong, with a non-zero exit', () => {
    const both = cli('resolve', randomBytes(4).toString('hex'), '-d', file);
    expect(both.code).toBe(1);
    expect(both.err).toMatch(/give exactly one of --commit and --rollback/);
    const replayAll = cli('replay', '-d', file);
    expect(replayAll.code).toBe(1);
    expect(replayAll.err).toMatch(/give message ids, a filter .* or --all/);
    const missing = cli('status', '-d', join(ROOT, 'no-such-file.mjs'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/Could not load the DataSource file/);
    expect(cli('list', '-d', file, '--status', 'DELIVERED').err).toMatch(/Allowed choices are HALF, COMMITTED, DELAYED, DEAD, CHECK_EXHAUSTED, DISCARDED/);
    // replay takes only DEAD messages: no --status there.
    expect(cli('replay', '-d', file, '--status', 'HALF').err).toMatch(/unknown option '--status'/);
    // A bad table name: one clean line, before anything is loaded (no stack trace).
    for (const command of ['status', 'migrate']) {
      const badTable = cli(command, '-d', file, '--table', 'bad table;');
      expect(badTable.code).toBe(1);
      expect(badTable.err).toMatch(/^error: TransactionalMessageModule option '--table' is "bad table;"; expected a plain SQL identifier/);
      expect(badTable.err).not.toMatch(/\n\s+at /);
    }
    // A file whose exported function never resolves: an error, not a silent exit 0.
    const never = join(dirname(file), `never-${randomBytes(4).toString('hex')}.mjs`);
    writeFileSync(never, 'export default () => new Promise(() => {});\n');
    const hung = cli('status', '-d', never);
    expect(hung.code).toBe(1);
    expect(hung.err).toMatch(/error: the command did not finish: the data-source file .* never resolved/);
    expect(cli('status', '--help').out.replace(/\s+/g, ' ')).toMatch(/the file's code runs/);
  });
});
