#!/usr/bin/env node
// `npx nestjs-transactional-message <command> --data-source <file>`: the operator's and CI's tool.
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { Command, Option } from 'commander';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DataSource } from 'typeorm';
import { LIVE_STATUSES, TransactionalMessageAdmin, type MessageQuery } from '../admin/transactional-message-admin.service.js';
import { transactionalMessageInboxMigrations } from '../consumer/inbox-migrations.js';
import { TransactionalMessageEngine } from '../engine/transactional-message.engine.js';
import { resolveOptions } from '../options/resolve-options.js';
import { transactionalMessageMigrations } from '../store/migrations/message-table.migrations.js';
import { DEFAULT_TABLE_NAME, validateTableName } from '../store/table-name.js';
import { loadDataSource } from './load-data-source.js';

interface CommonOptions {
  dataSource: string;
  table: string;
  json?: boolean;
}

/** This package's version, from its package.json: the first one above this script (dist/cjs/cli/main.js). */
function packageVersion(): string {
  for (let dir = dirname(realpathSync(process.argv[1] ?? '.')); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (manifest.name === 'nestjs-transactional-message' && manifest.version) return manifest.version;
  }
  return 'unknown';
}
const version = packageVersion();

const program = new Command('nestjs-transactional-message')
  .description('Transactional messages: run the migrations, see what waits, replay and resolve messages.')
  .version(version, '-V, --version', "print this package's version")
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

const common = (command: Command) =>
  command
    .requiredOption(
      '-d, --data-source <file>',
      "a JavaScript file exporting the TypeORM DataSource (default export or `dataSource`); the file's code runs, as with TypeORM's CLI",
    )
    .option('-t, --table <name>', 'the message table', DEFAULT_TABLE_NAME)
    .option('--json', 'print JSON');

const print = (options: CommonOptions, value: unknown, text: () => string) => console.log(options.json ? JSON.stringify(value, null, 2) : text());

/**
 * Opens the DataSource and an engine over it (no Nest application: no relay, no metrics), checks
 * the table as the module's boot does, runs `work`, closes both.
 */
async function withAdmin<T>(options: CommonOptions, work: (admin: TransactionalMessageAdmin) => Promise<T>): Promise<T> {
  const dataSource = await open(options);
  Logger.overrideLogger(['error']);
  const engine = new TransactionalMessageEngine(
    resolveOptions({ dataSource, producerGroup: 'cli', tableName: options.table, relay: { enabled: false }, metrics: false }),
  );
  try {
    await engine.init();
    return await work(engine.admin);
  } finally {
    await engine.stop();
    engine.release();
    await dataSource.destroy();
  }
}

async function open(options: CommonOptions): Promise<DataSource> {
  validateTableName(options.table, '--table');
  const dataSource = await loadDataSource(options.dataSource);
  if (!dataSource.isInitialized) await dataSource.initialize();
  return dataSource;
}

common(program.command('migrate'))
  .description("run the library's migrations (the message table; --inbox: the inbox table too), not the application's")
  .option('--inbox', 'also the inbox table')
  .option('--inbox-table <name>', 'the inbox table')
  .action(async (options: CommonOptions & { inbox?: boolean; inboxTable?: string }) => {
    validateTableName(options.table, '--table');
    if (options.inboxTable !== undefined) validateTableName(options.inboxTable, '--inbox-table');
    const loaded = await loadDataSource(options.dataSource);
    // Only its options are used: a file that initialises its DataSource itself would otherwise
    // keep its pool (and the process) alive after the migrations.
    if (loaded.isInitialized) await loaded.destroy();
    const { DataSource } = await import('typeorm');
    const migrations = [
      ...transactionalMessageMigrations({ tableName: options.table }),
      ...(options.inbox ? transactionalMessageInboxMigrations(options.inboxTable ? { tableName: options.inboxTable } : {}) : []),
    ];
    // The application's DataSource options, with only the library's migrations.
    const dataSource = new DataSource({ ...loaded.options, migrations, migrationsRun: false, synchronize: false } as ConstructorParameters<typeof DataSource>[0]);
    await dataSource.initialize();
    try {
      const ran = await dataSource.runMigrations({ transaction: 'each' });
      print(options, { ran: ran.map((m) => m.name) }, () => (ran.length ? ran.map((m) => `ran ${m.name}`).join('\n') : 'nothing to run: up to date'));
    } finally {
      await dataSource.destroy();
    }
  });

common(program.command('status'))
  .description('counts of what waits (HALF, COMMITTED, DELAYED, DEAD, parked, discarded) and how far behind the relay is')
  .action((options: CommonOptions) =>
    withAdmin(options, async (admin) => {
      const summary = await admin.summary();
      print(options, summary, () =>
        [
          ...Object.entries(summary.counts).map(([status, count]) => `${status.padEnd(16)} ${count}`),
          `relay lag        ${summary.relayLagMs} ms`,
          `oldest half      ${summary.oldestHalfAgeMs} ms`,
        ].join('\n'),
      );
    }),
  );

const filters = (command: Command) =>
  command
    .option('--topic <topic>')
    .option('--key <key>')
    .option('--producer-group <group>')
    .option('--older-than <ms>', 'stored at least this many ms ago', (value) => parseMs(value));

function parseMs(value: string): number {
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 0) throw new Error(`--older-than ${JSON.stringify(value)}: expected a whole number of milliseconds`);
  return ms;
}

type QueryOptions = CommonOptions & { status?: MessageQuery['status']; topic?: string; key?: string; producerGroup?: string; olderThan?: number };

const toQuery = (o: QueryOptions): MessageQuery => ({
  ...(o.status ? { status: o.status } : {}),
  ...(o.topic ? { topic: o.topic } : {}),
  ...(o.key ? { key: o.key } : {}),
  ...(o.producerGroup ? { producerGroup: o.producerGroup } : {}),
  ...(o.olderThan !== undefined ? { olderThanMs: o.olderThan } : {}),
});

filters(common(program.command('list')).addOption(new Option('-s, --status <status...>', 'live statuses').choices([...LIVE_STATUSES])))
  .description('messages that wait, oldest first')
  .option('--limit <n>', 'per page', (value) => Number(value), 50)
  .option('--after <cursor>', "the 'next' of the previous page")
  .action((options: QueryOptions & { limit: number; after?: string }) =>
    withAdmin(options, async (admin) => {
      const page = await admin.list(toQuery(options), { limit: options.limit, after: options.after });
      print(options, page, () =>
        [
          ...page.messages.map((m) =>
            [m.id, m.status.padEnd(15), m.topic, m.key ?? '-', m.createdAt.toISOString(), ...(m.deliverAt ? [`due ${m.deliverAt.toISOString()}`] : []), `checks ${m.checkCount}`, `attempts ${m.deliveryAttempts}`, m.lastError ?? '']
              .join('  ')
              .trimEnd(),
          ),
          page.next ? `more: --after ${page.next}` : `${page.messages.length} message(s)`,
        ].join('\n'),
      );
    }),
  );

filters(common(program.command('replay')))
  .description('put DEAD messages back in the delivery queue: the ids given, or every DEAD one the filter selects (--all for no filter)')
  .argument('[ids...]')
  .option('--all', 'every DEAD message')
  .action((ids: string[], options: QueryOptions & { all?: boolean }) =>
    withAdmin(options, async (admin) => {
      const filtered = options.topic || options.key || options.producerGroup || options.olderThan !== undefined;
      if (ids.length === 0 && !filtered && !options.all) throw new Error('replay: give message ids, a filter (--topic, --key, ...), or --all');
      let replayed = 0;
      const notDead: string[] = [];
      if (ids.length > 0) {
        for (const id of ids) {
          if (await admin.replay(id)) replayed++;
          else notDead.push(id);
        }
      } else {
        replayed = await admin.replayDead(toQuery(options));
      }
      print(options, { replayed, notDead }, () =>
        [`replayed ${replayed} message(s)`, ...(notDead.length ? [`not DEAD (left as they are): ${notDead.join(' ')}`] : [])].join('\n'),
      );
    }),
  );

common(program.command('resolve'))
  .description('end a HALF or parked (CHECK_EXHAUSTED) message: --commit (it will be delivered) or --rollback (never)')
  .argument('<id>')
  .option('--commit')
  .option('--rollback')
  .action((id: string, options: CommonOptions & { commit?: boolean; rollback?: boolean }) =>
    withAdmin(options, async (admin) => {
      if (Boolean(options.commit) === Boolean(options.rollback)) throw new Error('resolve: give exactly one of --commit and --rollback');
      await (options.commit ? admin.commit(id) : admin.rollback(id));
      print(options, { id, outcome: options.commit ? 'COMMIT' : 'ROLLBACK' }, () => `${id}: ${options.commit ? 'committed' : 'rolled back'}`);
    }),
  );

let finished = false;
// Node ends a process whose event loop is empty while a promise still waits (a data-source file
// whose export never resolves): say so instead of exiting 0 with no output.
process.once('beforeExit', () => {
  if (finished) return;
  console.error('error: the command did not finish: the data-source file (or its DataSource) never resolved, and nothing else was left to wait for');
  process.exitCode = 1;
});
program
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    console.error(`error: ${(error as Error)?.message ?? error}`);
    process.exitCode = 1;
  })
  .finally(() => (finished = true));
