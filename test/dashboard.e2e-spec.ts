import 'reflect-metadata';
import { Injectable, Module, type CanActivate, type ExecutionContext, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  MessageStatus,
  TransactionCheckHandler,
  TransactionalMessageAdminModule,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionalMessageRelay,
  TransactionStatus,
} from '../src/index.js';
import { InvalidModuleOptionsError } from '../src/errors/invalid-module-options.error.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, uniqueTopic } from './support/kafka.js';
import { ControlledPublisher, InjectedFailure } from './support/relay.fixture.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Kept after the run: what the browser saw at each step. */
const SCREENSHOTS = join(ROOT, '.cache', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'operator-token';

/** The application's own guard (here: a bearer token); it names the operator on the request, as passport does. */
@Injectable()
class OperatorGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: unknown }>();
    if (request.headers.authorization !== `Bearer ${TOKEN}`) return false;
    request.user = { username: 'alice' };
    return true;
  }
}

const COOKIE = 'session-of-bob';
/** Every request that reached the cookie guard with the operator's session (the cross-site ones too). */
const cookieRequests: string[] = [];

/** A session-cookie guard: what a browser sends by itself, also with requests that another site's page makes. */
@Injectable()
class SessionGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: unknown; method: string; url: string }>();
    if (!(request.headers.cookie ?? '').split(/;\s*/).includes(`op=${COOKIE}`)) return false;
    cookieRequests.push(`${request.method} ${request.url}`);
    request.user = 'bob';
    return true;
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
  const dialogs: string[] = [];
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
        TransactionalMessageAdminModule.forRoot({ path: 'session/messages', guard: SessionGuard }),
        TransactionalMessageAdminModule.forRoot({ path: 'bearer/messages', guard: OperatorGuard, dashboard: { auth: 'bearer' } }),
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
    // Every action asks first; the test reads what it says, then accepts.
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
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
    expect(dialogs.pop()).toMatch(new RegExp(`^Replay message ${ids.dead}\\?\\n\\nIt is published to ${topic.orders} again, and its consumers act on it`));
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
    expect(dialogs.pop()).toMatch(/^Commit message .*\n\nIt will be published to .* This does not change your business data: commit only if the business transaction behind it really committed/s);
    expect((await app.get(TransactionalMessageProducer).getMessage(ids.parked))?.status).toBe(MessageStatus.COMMITTED);
    // Who decided it: the guard's user, in the check history (and shown there).
    const history = await app.get(TransactionalMessageProducer).getCheckHistory(ids.parked);
    expect(history.map((c) => [c.checkNumber, c.result, c.checker])).toEqual([
      [1, 'UNKNOWN', expect.any(String)],
      [2, 'COMMIT', 'operator alice'],
    ]);
    expect(await page.getByTestId('checks').textContent()).toContain('operator alice');
    await page.getByTestId('refresh').click();
    await page.getByTestId('count-COMMITTED').filter({ hasText: '2' }).waitFor();
    expect(await count('CHECK_EXHAUSTED')).toBe('0');
    expect(await count('DEAD')).toBe('0');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-4-after.png'), fullPage: true });

    // Both are delivered now.
    expect(await app.get(TransactionalMessageRelay).drain()).toBe(2);
  });

  it("another site's page in the operator's browser cannot change anything (session cookie sent), the dashboard can; the page is never framed", async () => {
    const producer = app.get(TransactionalMessageProducer);
    const target = await producer.sendHalfMessage({ topic: topic.orders, key: 'order-9', body: { orderId: 'order-9' }, checkImmunityMs: 3_600_000 });
    const admin = `${url}/session/messages`;
    // Another origin (another port on the same machine: the same site, so the cookie goes along).
    const evil = createServer((_request, response) => {
      response.setHeader('content-type', 'text/html; charset=utf-8');
      response.end(`<!doctype html><title>prize</title>
<iframe name="sink"></iframe><iframe id="framed" src="${admin}"></iframe>
<form id="form" method="POST" action="${admin}/api/messages/${target}/commit" enctype="text/plain" target="sink"><input name='{"a":"' value='"}'></form>
<script>
(async () => {
  const api = '${admin}/api';
  await fetch(api + '/messages/${target}/commit', { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(() => {});
  await fetch(api + '/messages/${target}/rollback', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' }).catch(() => {});
  await fetch(api + '/replay-dead', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'topic=x' }).catch(() => {});
  document.getElementById('form').submit();
})();
</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      await context.addCookies([{ name: 'op', value: COOKIE, domain: '127.0.0.1', path: '/' }]);
      const victim = await context.newPage();
      victim.on('dialog', (dialog) => void dialog.accept());
      cookieRequests.length = 0;
      await victim.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      // Positive sign that the attack ran: its four requests reached the guard with the session.
      await eventually('the four cross-site requests', () => cookieRequests.filter((r) => r.startsWith('POST')).length >= 4);
      expect((await producer.getMessage(target))?.status).toBe(MessageStatus.HALF);
      expect(cookieRequests.filter((r) => r.startsWith('POST')).sort()).toEqual(
        [`POST /session/messages/api/messages/${target}/commit`, `POST /session/messages/api/messages/${target}/commit`, `POST /session/messages/api/messages/${target}/rollback`, 'POST /session/messages/api/replay-dead'].sort(),
      );
      // The framed dashboard never loaded (frame-ancestors 'none', X-Frame-Options: DENY).
      const framed = victim.frames().find((f) => f.url().startsWith(admin));
      const loaded = framed ? await framed.evaluate('document.getElementById("cards") !== null').catch(() => false) : false;
      expect(loaded).toBe(false);
      await victim.screenshot({ path: join(SCREENSHOTS, 'dashboard-5-cross-site-refused.png'), fullPage: true });

      // The dashboard itself, same origin, behind the same cookie: the commit goes through, recorded as bob's.
      const operator = await context.newPage();
      operator.on('dialog', (dialog) => void dialog.accept());
      await operator.goto(admin);
      await operator.getByTestId('view').selectOption('HALF');
      await operator.locator(`tr[data-id="${target}"]`).click();
      await operator.getByTestId('action-commit').click();
      await operator.getByTestId('detail-status').filter({ hasText: 'COMMITTED' }).waitFor();
      expect((await producer.getCheckHistory(target)).map((c) => [c.result, c.checker])).toEqual([['COMMIT', 'operator bob']]);
      await operator.screenshot({ path: join(SCREENSHOTS, 'dashboard-6-session-commit.png'), fullPage: true });
    } finally {
      await context.close();
      await new Promise((resolve) => evil.close(resolve));
    }
  });

  it('the page is sent with X-Frame-Options and a Content-Security-Policy; bad filters answer 400, not 500', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const pageResponse = await fetch(`${url}/ops/messages`, { headers: auth });
    expect(pageResponse.headers.get('x-frame-options')).toBe('DENY');
    expect(pageResponse.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'.*frame-ancestors 'none'/);
    for (const query of ['after=1e300', 'after=-1', 'topic=%00', 'key=a%00b', 'producerGroup=%00', 'olderThanMs=1e300', 'olderThanMs=99999999999999999']) {
      const response = await fetch(`${url}/ops/messages/api/messages?${query}`, { headers: auth });
      expect([query, response.status]).toEqual([query, 400]);
    }
    const post = await fetch(`${url}/ops/messages/api/replay-dead`, { method: 'POST', headers: auth });
    expect(post.status).toBe(415);
    expect(((await post.json()) as { message: string }).message).toMatch(/need "Content-Type: application\/json" \(got none\)/);
  });

  it('charts the last hour (published per topic, failures, lag, half messages), finds a message by id and a key, and refreshes by itself', async () => {
    const producer = app.get(TransactionalMessageProducer);
    const published = await producer.sendMessageInTransaction({ topic: topic.orders, key: 'order-9', body: { orderId: 'order-9' } }, () => TransactionStatus.COMMIT);
    // This one, and the DEAD message the first test replayed.
    expect(await app.get(TransactionalMessageRelay).drain()).toBeGreaterThanOrEqual(1);
    // What the charts are drawn from: this registration's events (the DEAD message of beforeAll failed, this one went out).
    const activity = (await (await fetch(`${url}/ops/messages/api/activity`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      bucketMs: number;
      buckets: Array<{ published: Record<string, number>; failed: number; dead: number; relayLagMs: number | null }>;
    };
    expect(activity.bucketMs).toBe(10_000);
    expect(activity.buckets.reduce((sum, b) => sum + (b.published[topic.orders] ?? 0), 0)).toBeGreaterThanOrEqual(1);
    expect(activity.buckets.reduce((sum, b) => sum + b.dead, 0)).toBeGreaterThanOrEqual(1);
    expect(activity.buckets.some((b) => b.relayLagMs !== null)).toBe(true);

    await page.goto(`${url}/ops/messages`);
    await page.getByTestId('chart-published').waitFor();
    expect(await page.getByTestId('chart-published').locator(`polyline[data-series="${topic.orders}"]`).count()).toBe(1);
    for (const id of ['failures', 'lag', 'half']) expect(await page.getByTestId(`chart-${id}`).locator('polyline').count()).toBeGreaterThan(0);

    // Find by id: the message opens. A delivered one is deleted here (retentionMs 0): not found, said.
    await page.getByTestId('find').fill(ids.half);
    await page.getByTestId('find-go').click();
    await eventually('the found message', async () => (await page.getByTestId('detail-id').textContent()) === ids.half);
    expect(await page.getByTestId('detail-status').textContent()).toBe('HALF');
    await page.getByTestId('find').fill(published.messageId);
    await page.getByTestId('find-go').click();
    await eventually('the delivered one not found', async () => (await page.getByTestId('notice').textContent())?.includes(`No message with id ${published.messageId}`) === true);
    await page.getByTestId('find').fill('01234567-89ab-7def-8123-456789abcdef');
    await page.getByTestId('find-go').click();
    await eventually('not found, said', async () => /No message with id 01234567-89ab-7def-8123-456789abcdef/.test((await page.getByTestId('notice').textContent()) ?? ''));

    // A key narrows the list.
    await page.getByTestId('key').fill('order-3');
    await page.getByTestId('apply').click();
    await eventually('only order-3', async () => (await page.getByTestId('row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')))).join() === ids.half);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-8-charts-search.png'), fullPage: true });

    // Auto-refresh: a new half message shows in the counts without a click.
    const before = Number(await count('HALF'));
    await producer.sendHalfMessage({ topic: topic.orders, key: 'order-10', body: { orderId: 'order-10' }, checkImmunityMs: 3_600_000 });
    await eventually('the count refreshed by itself', async () => Number(await count('HALF')) === before + 1, 15_000);
    await page.getByTestId('key').fill('');
  });

  it('behind a bearer-token guard (dashboard.auth "bearer"): the page asks for the token, or takes it from a link, and sends it with every call', async () => {
    // A browser with nothing but the page's own requests (no header added by the test).
    const plain = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const tab = await plain.newPage();
      const admin = `${url}/bearer/messages`;
      await tab.goto(admin);
      await tab.getByTestId('auth').waitFor();
      expect(await tab.getByTestId('notice').textContent()).toMatch(/Enter the API token/);
      expect(await tab.getByTestId('row').count()).toBe(0);
      await tab.screenshot({ path: join(SCREENSHOTS, 'dashboard-5-bearer-asks.png'), fullPage: true });
      // A wrong token is refused and said so.
      await tab.getByTestId('token').fill('not-the-token');
      await tab.getByTestId('use-token').click();
      await eventually('the refusal', async () => /token was refused \(403\)/.test((await tab.getByTestId('notice').textContent()) ?? ''));
      await tab.getByTestId('token').fill(TOKEN);
      await tab.getByTestId('use-token').click();
      await tab.getByTestId('row').first().waitFor();
      expect(await tab.getByTestId('auth').isHidden()).toBe(true);
      await tab.screenshot({ path: join(SCREENSHOTS, 'dashboard-6-bearer-token.png'), fullPage: true });
      // The API itself still wants the token: the page's requests carried it.
      expect((await fetch(`${admin}/api/summary`)).status).toBe(403);

      // A link of the application: #token=..., taken out of the address at once.
      const linked = await plain.newPage();
      await linked.goto(`${admin}#token=${encodeURIComponent(TOKEN)}`);
      await linked.getByTestId('row').first().waitFor();
      expect(new URL(linked.url()).hash).toBe('');
      // Forgetting it asks again.
      await linked.getByTestId('forget').click();
      await linked.getByTestId('auth').waitFor();
    } finally {
      await plain.close();
    }
  });

  it('with a session cookie (dashboard.auth "browser", the default): the page and its calls need nothing but the cookie', async () => {
    const plain = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      await plain.addCookies([{ name: 'op', value: COOKIE, url }]);
      const tab = await plain.newPage();
      await tab.goto(`${url}/session/messages`);
      await tab.getByTestId('row').first().waitFor();
      expect(await tab.getByTestId('auth').isHidden()).toBe(true);
      await tab.screenshot({ path: join(SCREENSHOTS, 'dashboard-7-session-cookie.png'), fullPage: true });
      // Without the cookie: the page itself is refused.
      await plain.clearCookies();
      expect((await tab.goto(`${url}/session/messages`))?.status()).toBe(403);
    } finally {
      await plain.close();
    }
  });

  it('runs behind the application guard, and refuses to be mounted without one', async () => {
    expect((await fetch(`${url}/ops/messages/api/summary`)).status).toBe(403);
    expect((await fetch(`${url}/ops/messages`)).status).toBe(403);
    expect((await fetch(`${url}/ops/messages/api/summary`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops' })).toThrow(InvalidModuleOptionsError);
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops' })).toThrow(/a guard for the admin API/);
    // Its option errors name its own forRoot(), not TransactionalMessageModule's.
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops' })).toThrow(/^TransactionalMessageAdminModule option 'guard' .* Fix it in TransactionalMessageAdminModule\.forRoot\(\)\.$/s);
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'a b', guard: OperatorGuard })).toThrow(/^TransactionalMessageAdminModule option 'path' is "a b"/);
    expect(() => TransactionalMessageAdminModule.forRoot({ guard: OperatorGuard, instance: 'no spaces' })).toThrow(/^TransactionalMessageAdminModule option 'instance' is "no spaces"/);
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops', allowUnguarded: true })).not.toThrow();
    expect(() => TransactionalMessageAdminModule.forRoot({ path: 'ops', guard: OperatorGuard, dashboard: { auth: 'token' as never } })).toThrow(
      /option 'dashboard.auth' is "token"; expected 'browser' \(a session cookie: the default\) or 'bearer'/,
    );
  });
});
