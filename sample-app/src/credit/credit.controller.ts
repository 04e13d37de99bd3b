import { Controller, Get, Param } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Inbox, MessageInfo, TransactionContext, type ConsumedMessage } from 'nestjs-transactional-message';
import { ORDER_PAID, type OrderPaid } from '../events.js';
import { short } from '../orders/orders.service.js';
import { Timeline } from '../timeline.service.js';
import { CreditEntry } from './credit-entry.entity.js';

/** One credit point per whole unit of currency paid. */
export function pointsFor(amountCents: number): number {
  return Math.floor(amountCents / 100);
}

@Controller('credit')
export class CreditController {
  constructor(
    private readonly tx: TransactionContext,
    private readonly timeline: Timeline,
  ) {}

  // <string>: Nest 12's typed overload would type the @MessageInfo() parameter as unknown.
  @EventPattern<string>(ORDER_PAID)
  @Inbox({ consumer: 'credit', tags: 'paid' })
  async onOrderPaid(@Payload() order: OrderPaid, @MessageInfo() info: ConsumedMessage): Promise<void> {
    const points = pointsFor(order.amountCents);
    await this.tx.getRepository(CreditEntry).insert({ userId: order.userId, orderId: order.orderId, points });
    this.timeline.record('credit', `message ${short(info.id ?? '(no id)')} → ${points} points for ${order.userId}`);
  }

  @Get(':userId')
  async balance(@Param('userId') userId: string): Promise<{ userId: string; points: number }> {
    const entries = await this.tx.runInTransaction((m) => m.getRepository(CreditEntry).findBy({ userId }));
    return { userId, points: entries.reduce((sum, e) => sum + e.points, 0) };
  }
}
