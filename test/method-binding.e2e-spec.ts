import 'reflect-metadata';
import { Controller, Injectable, Param, Post, Scope, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TransactionalMessage, TransactionalMessageModule } from '../src/index.js';
import { TransactionalMessageModuleMissingError } from '../src/errors/module-missing.error.js';
import { createTestDatabase, messageRows, type TestDatabase } from './support/databases.js';

// Where a decorated method finds the registration that serves it: bound by the explorer to each
// singleton Nest creates and to the class of request-scoped and transient providers, never through
// a table of the library's. These are the callers that do not go through `app.get()`.

@Injectable()
class Ledger {
  @TransactionalMessage<[string]>({ topic: 'ledger.entry', key: ([id]) => id, body: ([id]) => ({ id }) })
  async record(id: string): Promise<string> {
    return id;
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerRequestLedger {
  @TransactionalMessage<[string]>({ topic: 'ledger.request', key: ([id]) => id, body: ([id]) => ({ id }) })
  async record(id: string): Promise<string> {
    return id;
  }
}

@Injectable({ scope: Scope.TRANSIENT })
class TransientLedger {
  @TransactionalMessage<[string]>({ topic: 'ledger.transient', key: ([id]) => id, body: ([id]) => ({ id }) })
  async record(id: string): Promise<string> {
    return id;
  }
}

@Controller('ledger')
class LedgerController {
  /** A route handler that is itself decorated: Nest's router calls the prototype's method. */
  @Post('route/:id')
  @TransactionalMessage<[string]>({ topic: 'ledger.route', key: ([id]) => id, body: ([id]) => ({ id }) })
  async route(@Param('id') id: string): Promise<{ id: string }> {
    return { id };
  }
}

/** Request-scoped itself, as it depends on a request-scoped provider. */
@Controller('ledger')
class ScopedLedgerController {
  constructor(
    private readonly perRequest: PerRequestLedger,
    private readonly transient: TransientLedger,
  ) {}

  @Post('request/:id')
  async request(@Param('id') id: string): Promise<{ id: string }> {
    return { id: await this.perRequest.record(id) };
  }

  @Post('transient/:id')
  async transientRecord(@Param('id') id: string): Promise<{ id: string }> {
    return { id: await this.transient.record(id) };
  }
}

async function startApp(db: TestDatabase): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'ledger', relay: { enabled: false } })],
    providers: [Ledger, PerRequestLedger, TransientLedger],
    controllers: [LedgerController, ScopedLedgerController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  return app;
}

const post = async (app: INestApplication, path: string) => {
  const response = await fetch(`${await app.getUrl()}/ledger/${path}`, { method: 'POST' });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

const stored = async (db: TestDatabase) => (await messageRows(db)).map((row) => `${row.topic}:${row.message_key}`);

describe('where a decorated method finds its registration', () => {
  let first: TestDatabase;
  let second: TestDatabase;
  let one: INestApplication | undefined;
  let two: INestApplication | undefined;

  beforeAll(async () => {
    first = await createTestDatabase('sqlite');
    second = await createTestDatabase('sqlite');
  });

  afterAll(async () => {
    await one?.close();
    await two?.close();
    await first?.drop();
    await second?.drop();
  });

  it('a decorated route handler, a request-scoped and a transient provider each store their message', async () => {
    one = await startApp(first);
    expect(await post(one, 'route/r-1')).toEqual({ status: 201, body: { id: 'r-1' } });
    expect(await post(one, 'request/q-1')).toEqual({ status: 201, body: { id: 'q-1' } });
    expect(await post(one, 'transient/t-1')).toEqual({ status: 201, body: { id: 't-1' } });
    await one.get(Ledger).record('s-1');
    expect(await stored(first)).toEqual(['ledger.route:r-1', 'ledger.request:q-1', 'ledger.transient:t-1', 'ledger.entry:s-1']);
  });

  it('two applications in one process: each singleton writes into its own DataSource', async () => {
    two = await startApp(second);
    await one!.get(Ledger).record('s-2');
    await two.get(Ledger).record('s-3');
    expect(await post(two, 'route/r-3')).toEqual({ status: 201, body: { id: 'r-3' } });
    expect((await stored(first)).filter((m) => m.startsWith('ledger.entry') || m === 'ledger.route:r-3')).toEqual(['ledger.entry:s-1', 'ledger.entry:s-2']);
    expect(await stored(second)).toEqual(['ledger.entry:s-3', 'ledger.route:r-3']);
  });

  it('a request-scoped class two running applications serve is ambiguous: the call fails, naming the fix, and stores nothing', async () => {
    const response = await post(two!, 'request/q-2');
    expect(response.status).toBe(500);
    expect((await stored(first)).concat(await stored(second))).not.toContain('ledger.request:q-2');
    // With one application left, its request-scoped instances are served again.
    const before = one!.get(Ledger);
    await one!.close();
    one = undefined;
    await expect(before.record('s-4')).rejects.toThrow(TransactionalMessageModuleMissingError);
    expect(await post(two!, 'request/q-3')).toEqual({ status: 201, body: { id: 'q-3' } });
    expect(await stored(second)).toContain('ledger.request:q-3');
  });
});
