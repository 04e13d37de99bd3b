import 'reflect-metadata';
import { Injectable, SetMetadata, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import {
  currentHalfMessage,
  TransactionContext,
  TransactionalMessage,
  TransactionalMessageModule,
  type TransactionalMessageModuleOptions,
} from '../../src/index.js';
import type { TestDatabase } from './databases.js';

@Entity('shop_order')
export class ShopOrder {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column('int')
  amount!: number;
}

export interface PayInput {
  id: string;
  amount: number;
  outcome?: 'commit' | 'rollback' | 'unknown';
  /** Throw after the business write. */
  fail?: boolean;
  /** Use this body instead of the default. */
  body?: unknown;
}

export interface PaidEvent {
  orderId: string;
  amount: number;
}

export const TEST_METADATA = 'test:marker';

/** A service as a user writes it: business writes through TransactionContext, one message per call. */
@Injectable()
export class OrderService {
  lastMessageId = '';

  constructor(readonly tx: TransactionContext) {}

  @SetMetadata(TEST_METADATA, 'kept')
  @TransactionalMessage<[PayInput], PaidEvent>({
    topic: 'order.paid',
    key: ([input]) => input.id,
    tags: ['paid', 'vip'],
    properties: ([input]) => ({ amount: String(input.amount) }),
  })
  async pay(input: PayInput): Promise<PaidEvent> {
    await this.tx.getRepository(ShopOrder).insert({ id: input.id, amount: input.amount });
    this.lastMessageId = currentHalfMessage().id;
    if (input.fail) throw new Error(`payment ${input.id} failed`);
    if (input.outcome === 'rollback') currentHalfMessage().rollback();
    if (input.outcome === 'unknown') currentHalfMessage().unknown();
    if (input.body !== undefined) currentHalfMessage().setBody(input.body);
    return { orderId: input.id, amount: input.amount };
  }

  /** Two decorated calls in one transaction, then optionally a failure. */
  @TransactionalMessage<[PayInput, PayInput, boolean]>({ topic: 'order.batch', body: ([a, b]) => ({ ids: [a.id, b.id] }) })
  async payTwo(a: PayInput, b: PayInput, failAtEnd: boolean): Promise<void> {
    await this.pay(a);
    await this.pay(b);
    if (failAtEnd) throw new Error('batch failed');
  }

  /** Starts a decorated call and does not await it: the bug the library must catch. */
  @TransactionalMessage({ topic: 'order.batch', body: () => ({ forgotten: true }) })
  async payAndForget(input: PayInput, started: (p: Promise<unknown>) => void): Promise<void> {
    started(this.delayedPay(input));
  }

  private async delayedPay(input: PayInput): Promise<unknown> {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return this.pay(input);
  }

  @TransactionalMessage({ topic: 'order.mandatory', mandatory: true, body: () => ({}) })
  async mandatoryStep(): Promise<void> {}

  /** Writes its own order, calls pay() for another one and swallows its failure: the bug a joined call must not allow. */
  @TransactionalMessage<[PayInput, PayInput]>({ topic: 'order.batch', key: ([own]) => own.id, body: ([own]) => ({ id: own.id }) })
  async payAndSwallow(own: PayInput, other: PayInput): Promise<string> {
    await this.tx.getRepository(ShopOrder).insert({ id: own.id, amount: own.amount });
    return this.pay(other).then(
      () => 'paid',
      (error: Error) => `swallowed: ${error.message}`,
    );
  }
}

export async function createShopApp(
  db: TestDatabase,
  options: Partial<TransactionalMessageModuleOptions> = {},
  providers: Function[] = [],
): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TransactionalMessageModule.forRoot({
        dataSource: db.dataSource,
        producerGroup: 'shop',
        tableName: db.tableName,
        // These tests look at what is stored; the relay has tests of its own.
        ...(options.kafka || options.publisher ? {} : { relay: { enabled: false } }),
        ...options,
      }),
    ],
    providers: [OrderService, ...(providers as any[])],
  }).compile();
  moduleRef.useLogger(false);
  return moduleRef.init();
}
