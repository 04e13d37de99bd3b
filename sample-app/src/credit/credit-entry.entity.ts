import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity('credit_entries')
export class CreditEntry {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 64 })
  userId!: string;

  @Column({ type: 'varchar', length: 36 })
  orderId!: string;

  @Column({ type: 'int' })
  points!: number;
}
