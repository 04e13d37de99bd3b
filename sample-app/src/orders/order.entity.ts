import { Column, Entity, PrimaryColumn } from 'typeorm';

export type OrderStatus = 'NEW' | 'PAYMENT_PENDING' | 'PAID' | 'PAYMENT_FAILED';

@Entity('shop_orders')
export class Order {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 64 })
  userId!: string;

  @Column({ type: 'int' })
  amountCents!: number;

  @Column({ type: 'simple-json' })
  items!: Array<{ sku: string; quantity: number; priceCents: number }>;

  @Column({ type: 'varchar', length: 16 })
  status!: OrderStatus;

  /** The id of the order-paid message, once payment was attempted. */
  @Column({ type: 'varchar', length: 36, nullable: true })
  paymentMessageId!: string | null;
}
