import 'reflect-metadata';
import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import {
  MessageStatus,
  TransactionCheckHandler,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type HalfMessage,
  type TransactionalMessageModuleOptions,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, FAST_CHECK, FAST_RELAY, gate } from './support/relay.fixture.js';

const LIBRARY = 'TransactionalMessage';

/** Library log lines at warn or error level, from now on. */
function watchLibraryLogs(): { lines: () => string[]; restore: () => void } {
  const spies = (['warn', 'error'] as const).map((level) => jest.spyOn(Logger.prototype, level));
  return {
    lines: () =>
      spies.flatMap((spy) =>
        spy.mock.calls
          .map((args, i) => ({ args, self: spy.mock.contexts[i] as unknown as { context?: string } }))
          .filter(({ self }) => self?.context === LIBRARY)
          .map(({ args }) => String(args[0])),
      ),
    restore: () => spies.forEach((spy) => spy.mockRestore()),
  };
}

describe.each(DATABASE_KINDS)('shutdown on %s', (kind) => {
  const topic = { checks: uniqueTopic(`${kind}.shutdown-checks`), after: uniqueTopic(`${kind}.after-close`) };
  let db: TestDatabase;

  beforeAll(async () => {
    await createTopics(Object.values(topic));
  });

  beforeEach(async () => {
    db = await createTestDatabase(kind);
  });

  afterEach(async () => {
    await db?.drop();
  });

  async function boot(providers: Function[], options: Partial<TransactionalMessageModuleOptions>): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          checkImmunityMs: 0,
          publisher: new ControlledPublisher(),
          ...options,
          relay: { ...FAST_RELAY, ...options.relay },
          check: { ...FAST_CHECK, ...options.check },
        }),
      ],
      providers: providers as never[],
    }).compile();
    moduleRef.useLogger(false);
    return moduleRef.init();
  }

  it('a check batch cut by shutdown spends no check: only a handler that answered counts', async () => {
    const firstCall = gate();
    const release = gate();
    const calls: string[] = [];
    @Injectable()
    class Checker {
      @TransactionCheckHandler({ topic: topic.checks })
      async check(message: HalfMessage): Promise<TransactionStatus> {
        calls.push(message.id);
        firstCall.open();
        await release.wait;
        // The application is closing: the handler's own resources are going away.
        throw new Error('payment provider client closed');
      }
    }
    // maxChecks 1: every check is the last one, so a counted check would roll the message back.
    const app = await boot([Checker], { check: { maxChecks: 1, concurrency: 1, batchSize: 10, handlerTimeoutMs: 10_000 } });
    const producer = app.get(TransactionalMessageProducer);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await producer.sendHalfMessage({ topic: topic.checks, key: `k${i}`, body: { i } }));
    await firstCall.wait;

    const closing = app.close();
    // Let the shutdown get under way (handlers are no longer offered new messages), then let the handler fail.
    await new Promise((resolve) => setImmediate(resolve));
    release.open();
    await closing;

    expect(calls).toHaveLength(1);
    const rows = (await messageRows(db)).filter((r) => ids.includes(r.id));
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row).toMatchObject({ status: MessageStatus.HALF, lease_token: null });
      expect(Number(row.check_count)).toBe(0);
    }
  });

  it('after close() returns, nothing of the library runs: no query, no log line, even with a publish and a check handler stuck past the shutdown timeout', async () => {
    const publisher = new ControlledPublisher();
    const stuckPublish = gate();
    publisher.publishGate = stuckPublish.wait;
    const stuckCheck = gate();
    let handlerReturned: Promise<void> | undefined;
    @Injectable()
    class Checker {
      @TransactionCheckHandler({ topic: topic.after })
      check(): Promise<TransactionStatus> {
        const answer = stuckCheck.wait.then(() => TransactionStatus.COMMIT);
        handlerReturned = answer.then(() => undefined);
        return answer;
      }
    }
    const app = await boot([Checker], { publisher, relay: { shutdownTimeoutMs: 100 }, check: { handlerTimeoutMs: 10_000 } });
    const producer = app.get(TransactionalMessageProducer);
    const committed = await producer.sendHalfMessage({ topic: topic.after, key: 'c', body: {} });
    await producer.commit(committed);
    const half = await producer.sendHalfMessage({ topic: topic.after, key: 'h', body: {} });
    await eventually('the publish started', () => publisher.publishCalls > 0);
    await eventually('the check handler was called', () => handlerReturned !== undefined);

    await app.close();
    const logs = watchLibraryLogs();
    const queries = jest.spyOn(db.dataSource, 'createQueryRunner');
    try {
      // Let everything that was stuck go on, against a database the application has closed.
      stuckPublish.open();
      stuckCheck.open();
      await handlerReturned;
      await eventually('the stuck publish returned', () => publisher.sent.length > 0 || publisher.publishSettled > 0);
      await new Promise((resolve) => setTimeout(resolve, FAST_RELAY.pollIntervalMs * 4));
      expect(queries).not.toHaveBeenCalled();
      expect(logs.lines()).toEqual([]);
    } finally {
      logs.restore();
      queries.mockRestore();
    }
    // The batch was released at the timeout; the check's answer came too late to be applied.
    const rows = await messageRows(db);
    expect(rows.find((r) => r.id === committed)).toMatchObject({ status: MessageStatus.COMMITTED, lease_token: null });
    expect(rows.find((r) => r.id === half)).toMatchObject({ status: MessageStatus.HALF });
    expect(Number(rows.find((r) => r.id === half)!.check_count)).toBe(0);
  });
});
