import 'reflect-metadata';
import { ConsoleLogger, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TransactionalMessageAdminModule, TransactionalMessageModule } from '../src/index.js';
import { isLoopback } from '../src/admin/unguarded-exposure.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { ControlledPublisher } from './support/relay.fixture.js';

/** Keeps the error lines the application logs. */
class RecordingLogger extends ConsoleLogger {
  readonly errors: string[] = [];
  override error(message: unknown): void {
    this.errors.push(String(message));
  }
  override log(): void {}
  override warn(): void {}
}

describe('the admin API without a guard (allowUnguarded)', () => {
  let db: TestDatabase;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function listen(host: string, guarded: boolean): Promise<RecordingLogger> {
    @Module({
      imports: [
        TransactionalMessageModule.forRoot({ dataSource: db.dataSource, producerGroup: 'shop', publisher: new ControlledPublisher(), relay: { autoStart: false } }),
        TransactionalMessageAdminModule.forRoot(guarded ? { path: 'ops', guard: { canActivate: () => true } } : { path: 'ops', allowUnguarded: true }),
      ],
    })
    class AppModule {}
    const logger = new RecordingLogger();
    app = await NestFactory.create(AppModule, { logger });
    await app.listen(0, host);
    return logger;
  }

  it('says so loudly when the application listens beyond loopback', async () => {
    const logger = await listen('0.0.0.0', false);
    expect(logger.errors.join('\n')).toMatch(/The admin API at \/ops has NO guard \(allowUnguarded: true\) and the application listens on 0\.0\.0\.0:\d+, beyond loopback/);
  });

  it('stays quiet on loopback, and with a guard', async () => {
    expect((await listen('127.0.0.1', false)).errors.filter((e) => e.includes('NO guard'))).toEqual([]);
    await app!.close();
    expect((await listen('0.0.0.0', true)).errors.filter((e) => e.includes('NO guard'))).toEqual([]);
  });

  it('tells loopback addresses from the others', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect([address, isLoopback(address)]).toEqual([address, true]);
    for (const address of ['0.0.0.0', '::', '10.0.0.5', '::ffff:10.0.0.5', '128.0.0.1']) expect([address, isLoopback(address)]).toEqual([address, false]);
  });
});
