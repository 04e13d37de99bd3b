// An end-to-end test as a user writes it with Jest (README, Testing): the module on a real
// database with the built-in Kafka publisher (the client that is installed), run on demand.
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TransactionalMessage, TransactionalMessageModule, TransactionalMessageRelay, transactionalMessageMigrations } from 'nestjs-transactional-message';
import { DataSource } from 'typeorm';

@Injectable()
class RefundService {
  @TransactionalMessage<[string]>({ topic: process.env.COMPAT_TOPIC ?? 'tm-compat.jest', key: ([id]) => id, body: ([id]) => ({ id }) })
  async refund(id: string): Promise<void> {
    void id;
  }
}

describe('the module with the built-in Kafka publisher, under Jest', () => {
  it('publishes a committed message through the Kafka client that is installed', async () => {
    const dataSource = await new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, migrations: transactionalMessageMigrations(), migrationsRun: true }).initialize();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransactionalMessageModule.forRoot({
          dataSource,
          producerGroup: 'compat-jest',
          kafka: { brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',') },
          relay: { autoStart: false },
        }),
      ],
      providers: [RefundService],
    }).compile();
    moduleRef.useLogger(['error']);
    const app = await moduleRef.init();
    try {
      await app.get(RefundService).refund(`refund-${Date.now()}`);
      expect(await app.get(TransactionalMessageRelay).drain()).toBe(1);
    } finally {
      await app.close();
      await dataSource.destroy();
    }
  }, 60_000);
});
