import 'reflect-metadata';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import {
  TransactionCheckHandler,
  TransactionStatus,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionContext,
  type TransactionalMessageModuleOptions,
} from 'nestjs-transactional-message';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { body, KAFKA_BROKERS } from './harness.js';

/** The bench's business table. */
@Entity('bench_order')
export class BenchOrder {
  @PrimaryColumn({ type: 'varchar', length: 40 })
  id!: string;

  @Column({ type: 'varchar', length: 40 })
  customer!: string;

  @Column({ type: 'int' })
  amountCents!: number;
}

/** The topic of the decorated writer (a decorator needs it when the class is defined). */
export const BENCH_TOPIC = process.env.TM_BENCH_TOPIC ?? 'tm-bench.orders';

export const orderRow = (i: number, run: string): BenchOrder => ({ id: `${run}-${i}`, customer: `customer-${i % 977}`, amountCents: 1000 + (i % 5000) });

/** The same order write, with and without the transactional message. */
@Injectable()
export class OrderWriter {
  constructor(
    private readonly tx: TransactionContext,
    private readonly dataSource: DataSource,
  ) {}

  /** Baseline: what an application writes without the library. */
  async plain(i: number, run: string): Promise<void> {
    await this.dataSource.transaction((manager) => manager.insert(BenchOrder, orderRow(i, run)));
  }

  @TransactionalMessage<[number, string]>({ topic: BENCH_TOPIC, key: ([i]) => `key-${i % 1000}`, body: ([i, run]) => ({ ...body(i), i, run }) })
  async decorated(i: number, run: string): Promise<void> {
    await this.tx.manager.insert(BenchOrder, orderRow(i, run));
  }
}

/** Answers COMMIT to every transaction check (workload 5). */
@Injectable()
export class CheckAnswerer {
  checks = 0;

  @TransactionCheckHandler()
  check(): TransactionStatus {
    this.checks++;
    return TransactionStatus.COMMIT;
  }
}

@Module({})
class BenchModule {}

/** A Nest application with the library on `dataSource`. */
export async function benchApp(dataSource: DataSource, options: Partial<TransactionalMessageModuleOptions>, extraProviders: Array<new (...args: never[]) => unknown> = []): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(
    {
      module: BenchModule,
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource,
          producerGroup: 'bench',
          kafka: { brokers: KAFKA_BROKERS, clientId: 'tm-bench-relay' },
          ...options,
          // bench/compare-versions.ts: relay options a version needs to run the same design (JSON).
          ...(process.env.TM_BENCH_RELAY ? { relay: { ...JSON.parse(process.env.TM_BENCH_RELAY), ...options.relay } } : {}),
        }),
      ],
      providers: [OrderWriter, CheckAnswerer, ...extraProviders, { provide: DataSource, useValue: dataSource }],
    },
    { logger: process.env.TM_BENCH_LOGS === '1' ? ['error', 'warn', 'log'] : ['error'] },
  );
}
