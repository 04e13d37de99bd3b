import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';

// A topic and consumer group of this test run's own, set before the app's modules are loaded.
process.env.SHOP_ORDER_PAID_TOPIC = `shop.test.order-paid.${randomBytes(4).toString('hex')}`;
const { runDemo } = await import('../src/demo.js');
const { startShop } = await import('../src/bootstrap.js');
const { databaseOptions } = await import('../src/database.js');
const { PaymentGateway } = await import('../src/payments/payment-gateway.service.js');

const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

describe('sample shop', () => {
  it('the demo ends consistent on the embedded SQLite database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shop-'));
    try {
      const result = await runDemo({ database: databaseOptions({ SQLITE_FILE: join(dir, 'shop.sqlite') }), groupId: `shop-test-${randomBytes(4).toString('hex')}` });
      expect(result.problems).toEqual([]);
      expect(result.consistent).toBe(true);
      expect(result.timeline).toMatch(/payment pending → local transaction UNKNOWN/);
      expect(result.timeline).toMatch(/check #\d+ of \w+ \(order \w+\): provider says paid → COMMIT/);
      expect(result.timeline).toMatch(/payment declined → local transaction ROLLBACK/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the demo ends consistent on RabbitMQ (SHOP_TRANSPORT=rabbitmq): published through a ClientProxy, consumed by RMQ handlers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shop-'));
    const queue = `shop.test.${randomBytes(4).toString('hex')}`;
    const rabbitmqUrl = process.env.RABBITMQ_URL ?? `amqp://guest:guest@127.0.0.1:${process.env.RABBITMQ_PORT ?? 5672}`;
    try {
      const result = await runDemo({ transport: 'rabbitmq', queue, rabbitmqUrl, database: databaseOptions({ SQLITE_FILE: join(dir, 'shop.sqlite') }) });
      expect(result.problems).toEqual([]);
      expect(result.consistent).toBe(true);
      expect(result.timeline).toMatch(/check #\d+ of \w+ \(order \w+\): provider says paid → COMMIT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      // The durable queue of this run.
      const amqp = await import('amqplib');
      const connection = await amqp.connect(rabbitmqUrl);
      const channel = await connection.createChannel();
      await channel.deleteQueue(queue);
      await connection.close();
    }
  });

  it('refuses an unknown SHOP_TRANSPORT, naming the choices', async () => {
    const { shopTransport } = await import('../src/bootstrap.js');
    expect(() => shopTransport({ SHOP_TRANSPORT: 'kafkaa' })).toThrow('SHOP_TRANSPORT="kafkaa": use kafka (the default) or rabbitmq');
    expect(shopTransport({})).toBe('kafka');
  });

  it('the demo ends consistent on PostgreSQL (DATABASE_URL)', async () => {
    const name = `shop_test_${randomBytes(4).toString('hex')}`;
    const admin = await new DataSource({ type: 'postgres', url: POSTGRES_URL }).initialize();
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${name}`;
      const result = await runDemo({ database: databaseOptions({ DATABASE_URL: url.toString() }), groupId: `shop-test-${randomBytes(4).toString('hex')}` });
      expect(result.problems).toEqual([]);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    }
  });

  it('the REST API refuses bad input with a clear 400/404, and nothing is stored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shop-'));
    const shop = await startShop({ port: 0, fast: true, logger: false, database: databaseOptions({ SQLITE_FILE: join(dir, 'shop.sqlite') }) });
    try {
      const call = (method: string, path: string, body?: unknown) =>
        fetch(`${shop.url}${path}`, {
          method,
          headers: { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        }).then(async (response) => ({ status: response.status, json: async () => (await response.json()) as Record<string, any> }));
      const bad = await call('POST', '/orders', { userId: 'dave', items: [{ sku: 'book', quantity: 0, priceCents: 100 }] });
      expect(bad.status).toBe(400);
      expect((await bad.json()).message).toMatch(/invalid item .*quantity > 0/);
      expect((await call('POST', '/orders/no-such-order/pay', { card: '4242424242424242' })).status).toBe(404);

      const order = await (await call('POST', '/orders', { userId: 'dave', items: [{ sku: 'book', quantity: 1, priceCents: 100 }] })).json();
      const badCard = await call('POST', `/orders/${order.id}/pay`, { card: 'not a card' });
      expect(badCard.status).toBe(400);
      expect((await badCard.json()).message).toMatch(/card "not a card" is not a card number/);
      // The refused payment rolled its transaction back: the order is still NEW, and no message exists.
      const after = await (await call('GET', `/orders/${order.id}`)).json();
      expect(after).toMatchObject({ status: 'NEW', paymentMessageId: null, message: null });

      expect((await call('POST', `/orders/${order.id}/pay`, { card: '4242424242424242' })).status).toBe(200);
      const twice = await call('POST', `/orders/${order.id}/pay`, { card: '4242424242424242' });
      expect(twice.status).toBe(409);
      expect((await twice.json()).message).toMatch(/is PAID; only NEW orders can be paid/);

      // Operations: health, Prometheus metrics, the dashboard and its API (loopback only).
      const health = await call('GET', '/health');
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', details: { messages: { status: 'up' } } });
      const metricsText = await (await fetch(`${shop.url}/metrics`)).text();
      expect(metricsText).toMatch(/^transactional_message_messages_stored_total\{[^}]*status="COMMITTED"[^}]*\} [1-9]/m);
      const dashboard = await fetch(`${shop.url}/ops/messages`);
      expect(dashboard.status).toBe(200);
      expect(await dashboard.text()).toContain('<title>Transactional messages</title>');
      expect((await (await call('GET', '/ops/messages/api/summary')).json()).counts).toHaveProperty('DEAD');
    } finally {
      await shop.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.each(['sqlite', 'postgres'] as const)('concurrent payments of one order on %s', (kind) => {
    it('charge once and send one message: one request pays, the others are refused with 409', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'shop-'));
      const name = `shop_test_${randomBytes(4).toString('hex')}`;
      const admin = kind === 'postgres' ? await new DataSource({ type: 'postgres', url: POSTGRES_URL }).initialize() : undefined;
      await admin?.query(`CREATE DATABASE ${name}`);
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${name}`;
      const database = databaseOptions(kind === 'postgres' ? { DATABASE_URL: url.toString() } : { SQLITE_FILE: join(dir, 'shop.sqlite') });
      const shop = await startShop({ port: 0, fast: true, logger: false, database });
      try {
        const post = (path: string, body: unknown) =>
          fetch(`${shop.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const gateway = shop.app.get(PaymentGateway);
        for (const card of ['4242424242424242', '4000000000000000', '4000000000009999']) {
          const order = (await (await post('/orders', { userId: 'erin', items: [{ sku: 'lamp', quantity: 1, priceCents: 2500 }] })).json()) as { id: string };
          const chargesBefore = gateway.chargesMade;
          const statuses = (await Promise.all(Array.from({ length: 5 }, () => post(`/orders/${order.id}/pay`, { card })))).map((r) => r.status);
          expect(statuses.sort()).toEqual([200, 409, 409, 409, 409]);
          expect(gateway.chargesMade - chargesBefore).toBe(1);
          const messages = await shop.app.get(DataSource).query(
            kind === 'postgres' ? 'SELECT id FROM transactional_message WHERE message_key = $1' : 'SELECT id FROM transactional_message WHERE message_key = ?',
            [order.id],
          );
          expect(messages).toHaveLength(1);
        }
      } finally {
        await shop.close();
        await admin?.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin?.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
