// An example entity the documentation's TypeScript snippets import ('./order.entity'); compiled with
// them by scripts/check-docs.mjs. Not part of the package.
import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity()
export class Order {
  @PrimaryColumn()
  id!: string;

  @Column()
  status!: 'NEW' | 'PAYING' | 'PAID' | 'PAYMENT_FAILED';

  @Column({ nullable: true })
  remindAt?: Date;
}
