import { Controller, Get, NotFoundException, Param } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Inbox, MessageInfo, TransactionContext, type ConsumedMessage } from 'nestjs-transactional-message';
import { ORDER_PAID, type OrderPaid } from '../events.js';
import { short } from '../orders/orders.service.js';
import { Timeline } from '../timeline.service.js';
import { Shipment } from './shipment.entity.js';

@Controller('shipments')
export class LogisticsController {
  constructor(
    private readonly tx: TransactionContext,
    private readonly timeline: Timeline,
  ) {}

  /** Creates the shipment of a paid order, once per message (the inbox), in one transaction with the inbox record. */
  // <string>: Nest 12's typed overload would type the @MessageInfo() parameter as unknown.
  @EventPattern<string>(ORDER_PAID)
  @Inbox({ consumer: 'logistics', tags: 'paid' })
  async onOrderPaid(@Payload() order: OrderPaid, @MessageInfo() info: ConsumedMessage): Promise<void> {
    const parcels = order.items.reduce((sum, item) => sum + item.quantity, 0);
    await this.tx.getRepository(Shipment).insert({ orderId: order.orderId, userId: order.userId, parcels });
    this.timeline.record('logistics', `message ${short(info.id ?? '(no id)')} → shipment created for order ${short(order.orderId)} (${parcels} parcels)`);
  }

  @Get(':orderId')
  async get(@Param('orderId') orderId: string): Promise<Shipment> {
    const shipment = await this.tx.runInTransaction((m) => m.getRepository(Shipment).findOneBy({ orderId }));
    if (!shipment) throw new NotFoundException(`no shipment for order ${orderId}`);
    return shipment;
  }
}
