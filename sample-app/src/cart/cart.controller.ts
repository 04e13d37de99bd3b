import { BadRequestException, Body, Controller, Get, Param, Post } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Inbox, MessageInfo, TransactionContext, type ConsumedMessage } from 'nestjs-transactional-message';
import { In } from 'typeorm';
import { ORDER_PAID, type OrderPaid } from '../events.js';
import { short } from '../orders/orders.service.js';
import { Timeline } from '../timeline.service.js';
import { CartItem } from './cart-item.entity.js';

@Controller('carts')
export class CartController {
  constructor(
    private readonly tx: TransactionContext,
    private readonly timeline: Timeline,
  ) {}

  @Post(':userId/items')
  add(@Param('userId') userId: string, @Body() item: { sku: string; quantity: number }): Promise<CartItem> {
    if (typeof item?.sku !== 'string' || !item.sku || !Number.isInteger(item.quantity) || item.quantity <= 0) {
      throw new BadRequestException(`invalid cart item ${JSON.stringify(item)}: expected { sku: string, quantity > 0 }`);
    }
    return this.tx.runInTransaction((m) => m.getRepository(CartItem).save({ userId, sku: item.sku, quantity: item.quantity }));
  }

  @Get(':userId')
  items(@Param('userId') userId: string): Promise<CartItem[]> {
    return this.tx.runInTransaction((m) => m.getRepository(CartItem).findBy({ userId }));
  }

  /** Removes the paid items from the buyer's cart. */
  // <string>: Nest 12's typed overload would type the @MessageInfo() parameter as unknown.
  @EventPattern<string>(ORDER_PAID)
  @Inbox({ consumer: 'cart', tags: 'paid' })
  async onOrderPaid(@Payload() order: OrderPaid, @MessageInfo() info: ConsumedMessage): Promise<void> {
    const skus = order.items.map((item) => item.sku);
    const { affected } = await this.tx.getRepository(CartItem).delete({ userId: order.userId, sku: In(skus) });
    this.timeline.record('cart', `message ${short(info.id ?? '(no id)')} → cart of ${order.userId} cleared (${affected ?? 0} items)`);
  }
}
