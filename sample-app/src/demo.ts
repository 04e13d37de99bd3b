import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TransactionalMessageProducer, type StoredMessage } from 'nestjs-transactional-message';
import { DataSource } from 'typeorm';
import { startShop, type Shop, type ShopOptions } from './bootstrap.js';
import { CartItem } from './cart/cart-item.entity.js';
import { CreditEntry } from './credit/credit-entry.entity.js';
import { pointsFor } from './credit/credit.controller.js';
import { DATA_DIR } from './database.js';
import { Shipment } from './logistics/shipment.entity.js';
import type { Order } from './orders/order.entity.js';
import { short } from './orders/orders.service.js';

/** One order of the demo and what must be true of it in the end. */
interface Scenario {
  user: string;
  card: string;
  label: string;
  paid: boolean;
  order?: Order;
}

export interface DemoResult {
  consistent: boolean;
  problems: string[];
  timeline: string;
  summary: string;
}

/**
 * The seeds' scenario, end to end: three users fill their carts and pay. Alice's payment goes
 * through; Bob's is pending at the provider (the pay method ends UNKNOWN, the check handler asks
 * the provider later and commits); Carol's is declined (the message is rolled back). Consistent
 * means: shipments, credit points and cleared carts exactly for Alice and Bob, none for Carol.
 */
export async function runDemo(options: ShopOptions & { timeoutMs?: number } = {}): Promise<DemoResult> {
  const shop = await startShop({ port: 0, fast: true, logger: ['warn', 'error'], ...options });
  try {
    return await play(shop, options.timeoutMs ?? 60_000);
  } finally {
    await shop.close();
  }
}

async function play(shop: Shop, timeoutMs: number): Promise<DemoResult> {
  const run = randomBytes(3).toString('hex');
  const scenarios: Scenario[] = [
    { user: `alice-${run}`, card: '4242424242424242', label: 'paid at once', paid: true },
    { user: `bob-${run}`, card: '4000000000000000', label: 'pending, settled by the check', paid: true },
    { user: `carol-${run}`, card: '4000000000009999', label: 'declined, rolled back', paid: false },
  ];
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${shop.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  };

  for (const s of scenarios) {
    await api('POST', `/carts/${s.user}/items`, { sku: 'book', quantity: 2 });
    await api('POST', `/carts/${s.user}/items`, { sku: 'pen', quantity: 1 });
    s.order = await api<Order>('POST', '/orders', {
      userId: s.user,
      items: [
        { sku: 'book', quantity: 2, priceCents: 1250 },
        { sku: 'pen', quantity: 1, priceCents: 300 },
      ],
    });
  }
  for (const s of scenarios) {
    const order = await api<Order>('POST', `/orders/${s.order!.id}/pay`, { card: s.card });
    shop.timeline.record('api', `POST /orders/${short(order.id)}/pay (${s.label}) → ${order.status}`);
  }

  const dataSource = shop.app.get(DataSource);
  const producer = shop.app.get(TransactionalMessageProducer);
  const delivered = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  let problems: string[] = [];
  for (;;) {
    for (const s of scenarios) {
      const view = await api<Order & { message: Pick<StoredMessage, 'id' | 'status'> | null }>('GET', `/orders/${s.order!.id}`);
      if (view.message?.status === 'DELIVERED' && !delivered.has(view.message.id)) {
        delivered.add(view.message.id);
        shop.timeline.record('relay', `message ${short(view.message.id)} (order ${short(view.id)}) published to ${shop.transport === 'rabbitmq' ? 'RabbitMQ' : 'Kafka'} and marked DELIVERED`);
      }
    }
    problems = await inconsistencies(dataSource, producer, scenarios);
    if (problems.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // A last look, after the consumers had time to do anything they should not.
  if (problems.length === 0) {
    await new Promise((r) => setTimeout(r, 1_000));
    problems = await inconsistencies(dataSource, producer, scenarios);
  }
  const summary = await summarize(dataSource, producer, scenarios);
  return { consistent: problems.length === 0, problems, timeline: shop.timeline.render(), summary };
}

async function inconsistencies(dataSource: DataSource, producer: TransactionalMessageProducer, scenarios: Scenario[]): Promise<string[]> {
  const problems: string[] = [];
  for (const s of scenarios) {
    const order = s.order!;
    const [shipments, credits, cart, saved] = await Promise.all([
      dataSource.getRepository(Shipment).findBy({ orderId: order.id }),
      dataSource.getRepository(CreditEntry).findBy({ orderId: order.id }),
      dataSource.getRepository(CartItem).findBy({ userId: s.user }),
      dataSource.getRepository<Order>('Order').findOneBy({ id: order.id }),
    ]);
    const message = saved?.paymentMessageId ? await producer.getMessage(saved.paymentMessageId) : null;
    const expect = (ok: boolean, text: string) => ok || problems.push(`${s.user}: ${text}`);
    if (s.paid) {
      expect(saved?.status === 'PAID', `order should be PAID, is ${saved?.status}`);
      expect(message?.status === 'DELIVERED', `message should be DELIVERED, is ${message?.status}`);
      expect(shipments.length === 1, `should have exactly 1 shipment, has ${shipments.length}`);
      expect(credits.length === 1 && credits[0].points === pointsFor(order.amountCents), `should have ${pointsFor(order.amountCents)} points once, has ${JSON.stringify(credits.map((c) => c.points))}`);
      expect(cart.length === 0, `cart should be empty, has ${cart.length} items`);
    } else {
      expect(saved?.status === 'PAYMENT_FAILED', `order should be PAYMENT_FAILED, is ${saved?.status}`);
      expect(message?.status === 'ROLLED_BACK', `message should be ROLLED_BACK, is ${message?.status}`);
      expect(shipments.length === 0, `should have no shipment, has ${shipments.length}`);
      expect(credits.length === 0, `should have no points, has ${credits.length} entries`);
      expect(cart.length === 2, `cart should still hold its 2 items, has ${cart.length}`);
    }
  }
  return problems;
}

async function summarize(dataSource: DataSource, producer: TransactionalMessageProducer, scenarios: Scenario[]): Promise<string> {
  const lines = [`  order   user              ${'payment'.padEnd(40)}  message      checks  shipment  points  cart`];
  for (const s of scenarios) {
    const saved = await dataSource.getRepository<Order>('Order').findOneBy({ id: s.order!.id });
    const message = saved?.paymentMessageId ? await producer.getMessage(saved.paymentMessageId) : null;
    const shipments = await dataSource.getRepository(Shipment).countBy({ orderId: s.order!.id });
    const points = (await dataSource.getRepository(CreditEntry).findBy({ orderId: s.order!.id })).reduce((sum, c) => sum + c.points, 0);
    const cart = await dataSource.getRepository(CartItem).countBy({ userId: s.user });
    lines.push(
      `  ${short(s.order!.id)}  ${s.user.padEnd(16)}  ${`${saved?.status} (${s.label})`.padEnd(40)}  ${String(message?.status).padEnd(11)}  ${String(message?.checkCount ?? 0).padStart(6)}  ${String(shipments).padStart(8)}  ${String(points).padStart(6)}  ${cart} items`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (!process.env.DATABASE_URL && !process.env.SQLITE_FILE) rmSync(resolve(DATA_DIR, 'shop.sqlite'), { force: true });
  const result = await runDemo();
  console.log(`\nTimeline\n${result.timeline}\n\nFinal state\n${result.summary}\n`);
  if (result.consistent) {
    console.log('Consistent: shipments, credit points and cleared carts exactly for the paid orders, none for the declined one.');
    console.log(
      '\nRun the shop yourself to see, while it runs, the dashboard of the messages at http://127.0.0.1:3000/ops/messages, ' +
        'Prometheus metrics at /metrics and the health check at /health. ' +
        // scripts/prepare.sh says whether Kafka was running before (then it is left running).
        (process.env.TM_KAFKA_WAS_UP === '1' && (process.env.SHOP_TRANSPORT ?? 'kafka') === 'kafka'
          ? 'Kafka was running before the demo and still is: run '
          : 'The demo stopped the broker it started: start it again first, ' +
            '`bash scripts/services.sh start kafka` (or `start rabbitmq` with SHOP_TRANSPORT=rabbitmq), then ') +
        '`node sample-app/dist/src/main.js` (port 3000).',
    );
    process.exit(0);
  }
  console.error(`NOT consistent:\n  ${result.problems.join('\n  ')}`);
  process.exit(1);
}
