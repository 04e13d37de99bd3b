import 'reflect-metadata';
import { Injectable, Module, type CanActivate, type ExecutionContext, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  InvalidModuleOptionsError,
  MessageStatus,
  TransactionCheckHandler,
  TransactionalMessageAdminModule,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, InjectedFailure } from './support/relay.fixture.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Kept after the run: what the browser saw at each step. */
const SCREENSHOTS = join(ROOT, '.cache', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'operator-token';

/** The application's own guard (here: a bearer token). */
@Injectable()
class OperatorGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers.authorization === `Bearer ${TOKEN}`;
  }
}

describe('the admin dashboard in a real headless Chromium (PostgreSQL)', () => {
  const topic = { orders: uniqueTopic('dashboard.orders'), parked: uniqueTopic('dashboard.parked') };
  let db: TestDatabase;
  let app: INestApplication;
  let url: string;
  let browser: Browser;
  let page: Page;
  const refused = new Set<string>();
  const ids: Record<'dead' | 'parked' | 'half', string> = { dead: '', parked: '', half: '' };

  @Injectable()
  class Undecided {
    @TransactionCheckHandler({ topic: topic.parked })
    check(): TransactionStatus {
      return TransactionStatus.UNKNOWN;
    }
  }

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    db = await createTestDatabase('postgres');
    await createTopics(Object.values(topic));
    const publisher = new ControlledPublisher();
    publisher.inject = (messages) => (messages.some((m) => refused.has(m.id)) ? new InjectedFailure('MESSAGE_TOO_LARGE: the broker refused it', { kind: 'message', retriable: false }) : undefined);
    @Module({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource: db.dataSource,
          producerGroup: 'shop',
          checkImmunityMs: 0,
          publisher,
          relay: { autoStart: false },
          check: { maxChecks: 1, onExhausted: 'park' },
        }),
        TransactionalMessageAdminModule.forRoot({ path: 'ops/messages', guard: OperatorGuard }),
      ],
      providers: [Undecided],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');

    const producer = app.get(TransactionalMessageProducer);
    ids.dead = (await producer.sendMessageInTransaction({ topic: topic.orders, key: 'order-1', body: { orderId: 'order-1', amountCents: 4200 } }, () => TransactionStatus.COMMIT)).messageId;
    refused.add(ids.dead);
    await app.get(TransactionalMessageRelay).drain();
    ids.parked = await producer.sendHalfMessage({ topic: topic.parked, key: 'order-2', body: { orderId: 'order-2' } });
    await app.get(TransactionalMessageRelay).runChecksNow();
    ids.half = await producer.sendHalfMessage({ topic: topic.orders, key: 'order-3', body: { orderId: 'order-3' }, checkImmunityMs: 3_600_000 });

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // As root, without a sandbox; no background traffic (the machine has no outside network).
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` }, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.drop();
  });

  const count = (id: string) => page.getByTestId(`count-${id}`).locator('b').textContent();

  it('shows the counts and the messages in doubt; opens one; replays a DEAD one; commits a parked one', async () => {
    await page.goto(`${url}/ops/messages`);
    await page.getByTestId('row').first().waitFor();
    expect(await count('DEAD')).toBe('1');
    expect(await count('CHECK_EXHAUSTED')).toBe('1');
    expect(await count('HALF')).toBe('1');
    const shown = await page.getByTestId('row').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-id")));
    expect(shown).toEqual([ids.dead, ids.parked, ids.half]);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-1-in-doubt.png'), fullPage: true });

    // The DEAD one: its error, its body; replay it.
    await page.locator(`tr[data-id="${ids.dead}"]`).click();
    await page.getByTestId('detail-status').filter({ hasText: 'DEAD' }).waitFor();
    expect(await page.getByTestId('detail').textContent()).toContain('MESSAGE_TOO_LARGE: the broker refused it');
    expect(JSON.parse((await page.getByTestId('detail-body').textContent())!)).toEqual({ orderId: 'order-1', amountCents: 4200 });
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-2-dead.png'), fullPage: true });
    refused.clear();
    await page.getByTestId('action-replay').click();
    await page.getByTestId('detail-status').filter({ hasText: 'COMMITTED' }).waitFor();
    expect(await page.getByTestId('notice').textContent()).toBe(`Message ${ids.dead}: replayed`);
    expect((await app.get(TransactionalMessageProducer).getMessage(ids.dead))?.status).toBe(MessageStatus.COMMITTED);

    // The parked one, in its own view: its check history; commit it.
    await page.getByTestId('view').selectOption('CHECK_EXHAUSTED');
    await page.locator(`tr[data-id="${ids.parked}"]`).click();
    await page.getByTestId('checks').waitFor();
    expect(await page.getByTestId('checks').locator('tbody tr').count()).toBe(1);
    expect(await page.getByTestId('checks').textContent()).toContain('UNKNOWN');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-3-parked.png'), fullPage: true });
    await page.getByTestId('action-commit').click();
    await page.getByTestId('detail-status').filter({ hasText: 'COMMITTED' }).waitFor();
    expect((await app.get(TransactionalMessageProducer).getMessage(ids.parked))?.status).toBe(MessageStatus.COMMITTED);
    await page.getByTestId('refresh').click();
    await page.getByTestId('count-COMMITTED').filter({ hasText: '2' }).waitFor();
    expect(await count('CHECK_EXHAUSTED')).toBe('0');
    expect(await count('DEAD')).toBe('0');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-4-after.png'), fullPage: true });

    // Both are delivered now.
    expect(await app.get(TransactionalMessageRelay).drain()).toBe(2);
  });

  it('runs behind the application guard, and refuses to be mounted without one', async () => {
    expect((await fetch(`${url}/ops/messages/api/summary`)).status).toBe(403);
    expect((await fetch(`${url}/ops/messages`)).status).toBe(403);
    expect((await fetch(`${url}/ops/messages/api/summary`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops' })).toThrow(InvalidModuleOptionsError);
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops' })).toThrow(/a guard for the admin API/);
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops', allowUnguarded: true })).not.toThrow();
  });
});
