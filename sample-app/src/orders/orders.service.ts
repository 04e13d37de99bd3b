import { BadRequestException, ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  currentHalfMessage,
  TransactionCheckHandler,
  TransactionContext,
  TransactionalMessage,
  TransactionStatus,
  type HalfMessage,
} from 'nestjs-transactional-message';
import { ORDER_PAID, type OrderPaid } from '../events.js';
import { PaymentGateway } from '../payments/payment-gateway.service.js';
import { Timeline } from '../timeline.service.js';
import { Order } from './order.entity.js';

export interface NewOrder {
  userId: string;
  items: Array<{ sku: string; quantity: number; priceCents: number }>;
}

@Injectable()
export class OrdersService {
  constructor(
    private readonly tx: TransactionContext,
    private readonly gateway: PaymentGateway,
    private readonly timeline: Timeline,
  ) {}

  create(input: NewOrder): Promise<Order> {
    if (!input || typeof input.userId !== 'string' || !input.userId || !Array.isArray(input.items) || input.items.length === 0) {
      throw new BadRequestException('an order needs a userId and at least one item { sku, quantity, priceCents }');
    }
    for (const item of input.items) {
      if (typeof item?.sku !== 'string' || !Number.isInteger(item.quantity) || item.quantity <= 0 || !Number.isInteger(item.priceCents) || item.priceCents < 0) {
        throw new BadRequestException(`invalid item ${JSON.stringify(item)}: expected { sku: string, quantity > 0, priceCents >= 0 }`);
      }
    }
    const order: Order = {
      id: randomUUID(),
      userId: input.userId,
      items: input.items,
      amountCents: input.items.reduce((sum, item) => sum + item.quantity * item.priceCents, 0),
      status: 'NEW',
      paymentMessageId: null,
    };
    return this.tx.runInTransaction(async (manager) => {
      await manager.getRepository(Order).insert(order);
      this.timeline.record('orders', `order ${short(order.id)} created for ${order.userId}: ${order.amountCents} cents`);
      return order;
    });
  }

  /**
   * Pays an order. The order's new status and the order-paid message commit in one transaction:
   * paid → COMMIT; pending at the provider → UNKNOWN (the check handler below asks it later);
   * declined → ROLLBACK (the order is marked failed, the message never goes out).
   *
   * Two requests may pay the same order at once (a double click, a client retry). The first step
   * is a conditional update, NEW → PAYMENT_PENDING, which takes the order's row lock: a concurrent
   * pay of the same order waits for this transaction, then finds the order no longer NEW and is
   * refused (409) before it charges anything. The provider's idempotency key is the order id, so
   * even a retry that reached the provider twice is one charge.
   */
  @TransactionalMessage<[string, string], Order>({
    topic: ORDER_PAID,
    key: ([orderId]) => orderId,
    tags: 'paid',
    body: (_args, order): OrderPaid => ({
      orderId: order.id,
      userId: order.userId,
      amountCents: order.amountCents,
      items: order.items.map(({ sku, quantity }) => ({ sku, quantity })),
    }),
  })
  async pay(orderId: string, card: string): Promise<Order> {
    const orders = this.tx.getRepository(Order);
    const message = currentHalfMessage();
    const claimed = await orders.update({ id: orderId, status: 'NEW' }, { status: 'PAYMENT_PENDING', paymentMessageId: message.id });
    if (!claimed.affected) {
      const current = await orders.findOneBy({ id: orderId });
      if (!current) throw new NotFoundException(`order ${orderId} does not exist`);
      throw new ConflictException(`order ${orderId} is ${current.status}; only NEW orders can be paid`);
    }
    const order = (await orders.findOneBy({ id: orderId }))!;
    const result = this.gateway.charge(paymentKey(orderId), order.amountCents, card);
    if (result === 'paid') {
      order.status = 'PAID';
    } else if (result === 'pending') {
      message.unknown(); // the order stays PAYMENT_PENDING until the check settles it
    } else {
      order.status = 'PAYMENT_FAILED';
      message.rollback();
    }
    await orders.save(order);
    const outcome = result === 'paid' ? 'COMMIT' : result === 'pending' ? 'UNKNOWN' : 'ROLLBACK';
    this.timeline.record('orders', `order ${short(orderId)}: payment ${result} → local transaction ${outcome}, half message ${short(message.id)} stored`);
    return order;
  }

  /** RocketMQ's check-back: asks the payment provider about a charge that was pending. */
  @TransactionCheckHandler({ topic: ORDER_PAID })
  async checkPayment(message: HalfMessage<OrderPaid>): Promise<TransactionStatus> {
    const status = this.gateway.status(paymentKey(message.body.orderId));
    const answer =
      status === 'paid' ? TransactionStatus.COMMIT : status === 'declined' || status === 'unknown' ? TransactionStatus.ROLLBACK : TransactionStatus.UNKNOWN;
    if (answer !== TransactionStatus.UNKNOWN) {
      await this.tx.runInTransaction((manager) =>
        manager.getRepository(Order).update({ id: message.body.orderId, status: 'PAYMENT_PENDING' }, { status: answer === TransactionStatus.COMMIT ? 'PAID' : 'PAYMENT_FAILED' }),
      );
    }
    this.timeline.record('check', `check #${message.checkCount} of ${short(message.id)} (order ${short(message.body.orderId)}): provider says ${status} → ${answer}`);
    return answer;
  }

  async get(orderId: string): Promise<Order> {
    const order = await this.tx.runInTransaction((manager) => manager.getRepository(Order).findOneBy({ id: orderId }));
    if (!order) throw new NotFoundException(`order ${orderId} does not exist`);
    return order;
  }
}

/** The payment provider's idempotency key: one charge per order, however often it is asked. */
function paymentKey(orderId: string): string {
  return `order-${orderId}`;
}

export function short(id: string): string {
  return id.slice(-6);
}
