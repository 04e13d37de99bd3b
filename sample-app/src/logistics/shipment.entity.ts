import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity('logistics_shipments')
export class Shipment {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 36, unique: true })
  orderId!: string;

  @Column({ type: 'varchar', length: 64 })
  userId!: string;

  @Column({ type: 'int' })
  parcels!: number;
}
