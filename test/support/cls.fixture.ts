import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { ClsPluginTransactional, Transactional, TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsModule } from 'nestjs-cls';
import { TransactionalMessage } from '../../src/index.js';
import { OrderService, ShopOrder } from './shop.fixture.js';

export { ClsModule, ClsPluginTransactional, TransactionalAdapterTypeOrm };

/** Application code written with @nestjs-cls/transactional. */
@Injectable()
export class CheckoutService {
  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly orders: OrderService,
  ) {}

  @Transactional()
  async checkout(cartId: string, orderId: string, fail: boolean): Promise<void> {
    await this.txHost.tx.getRepository(ShopOrder).insert({ id: cartId, amount: 0 });
    await this.orders.pay({ id: orderId, amount: 10 });
    if (fail) throw new Error('checkout failed');
  }

  /** Swallows the failure of a decorated call inside its @Transactional() transaction, and commits. */
  @Transactional()
  async checkoutSwallowing(cartId: string, orderId: string): Promise<string> {
    await this.txHost.tx.getRepository(ShopOrder).insert({ id: cartId, amount: 0 });
    return this.orders.pay({ id: orderId, amount: 10, fail: true }).then(
      () => 'paid',
      (error: Error) => `swallowed: ${error.message}`,
    );
  }

  /** A decorated method whose business code uses TransactionHost.tx, not TransactionContext. */
  @TransactionalMessage<[string, boolean]>({ topic: 'cart.cleared', key: ([id]) => id, body: ([id]) => ({ id }) })
  async clearCart(id: string, fail: boolean): Promise<string> {
    await this.txHost.tx.getRepository(ShopOrder).insert({ id, amount: 0 });
    if (fail) throw new Error('clear failed');
    const [{ txid }] = await this.txHost.tx.query('SELECT txid_current()::text AS txid').catch(() => [{ txid: 'n/a' }]);
    return txid;
  }
}

