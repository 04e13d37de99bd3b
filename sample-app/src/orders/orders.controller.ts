import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { TransactionalMessageProducer } from 'nestjs-transactional-message';
import { OrdersService, type NewOrder } from './orders.service.js';

@Controller('orders')
export class OrdersController {
  constructor(
    private readonly orders: OrdersService,
    private readonly producer: TransactionalMessageProducer,
  ) {}

  @Post()
  create(@Body() body: NewOrder) {
    return this.orders.create(body);
  }

  @Post(':id/pay')
  @HttpCode(200)
  pay(@Param('id') id: string, @Body() body: { card: string }) {
    return this.orders.pay(id, body?.card);
  }

  /** The order, with the state of its order-paid message. */
  @Get(':id')
  async get(@Param('id') id: string) {
    const order = await this.orders.get(id);
    const message = order.paymentMessageId ? await this.producer.getMessage(order.paymentMessageId) : null;
    return { ...order, message: message && { id: message.id, status: message.status, checkCount: message.checkCount } };
  }
}
