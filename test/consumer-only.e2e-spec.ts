import 'reflect-metadata';
import { Controller, Injectable, type INestMicroservice } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  Inbox,
  MessageInfo,
  TagFilter,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionContext,
  transactionalMessageInboxMigrations,
  type ConsumedMessage,
} from '../src/index.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.js';
import { createTopics, eventually, listenKafkaMicroservice, testKafka, uniqueTopic } from './support/kafka.js';

@Entity('shipment_effect')
class Shipment {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 64 })
  messageId!: string;

  @Column({ type: 'varchar', length: 64 })
  orderKey!: string;
}

describe.each(DATABASE_KINDS)('a consumer-only service on %s: a DataSource and the inbox migration, nothing else', (kind) => {
  const topic = uniqueTopic(`${kind}.consumer-only`);
  let db: TestDatabase;
  let microservice: INestMicroservice;

  @Controller()
  class Logistics {
    constructor(private readonly tx: TransactionContext) {}

    @EventPattern<string>(topic)
    @Inbox({ consumer: 'logistics' })
    @TagFilter('paid')
    async onPaid(@Payload() body: { order: string }, @MessageInfo() info: ConsumedMessage): Promise<void> {
      await this.tx.getRepository(Shipment).insert({ messageId: info.id!, orderKey: `${info.key}:${body.order}` });
    }
  }

  beforeAll(async () => {
    // No message table: only the business table and the inbox's.
    db = await createTestDatabase(kind, { entities: [Shipment], migrate: false });
    for (const Migration of transactionalMessageInboxMigrations()) {
      const runner = db.dataSource.createQueryRunner();
      await new Migration().up(runner);
      await runner.release();
    }
    await createTopics([topic]);
    const moduleRef = await Test.createTestingModule({
      imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource })],
      controllers: [Logistics],
    }).compile();
    moduleRef.useLogger(false);
    microservice = await listenKafkaMicroservice(moduleRef, `tm-test-consumer-only-${kind}`, { consumer: { retry: { retries: 10, initialRetryTime: 50, maxRetryTime: 500 } } });
  });

  afterAll(async () => {
    await microservice?.close();
    await db?.drop();
  });

  it('applies each message once (a redelivered record is dropped) and filters by tag', async () => {
    const [paid, refunded, afterPaid, afterRefunded] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const record = (id: string, tags: string, key: string, order: string) => ({
      key,
      value: JSON.stringify({ order }),
      headers: { 'tm-message-id': id, 'tm-producer-group': 'orders', 'tm-content-type': 'application/json', 'tm-key': key, 'tm-tags': tags },
    });
    const producer = testKafka().producer();
    await producer.connect();
    try {
      // The relay publishes at least once: the paid record twice. Then a record of another tag.
      // A last record on each key (same partition, so after the others) says when they were handled.
      await producer.send({
        topic,
        messages: [
          record(paid, 'paid', 'k1', 'o-1'),
          record(paid, 'paid', 'k1', 'o-1'),
          record(refunded, 'refunded', 'k2', 'o-2'),
          record(afterPaid, 'paid', 'k1', 'o-3'),
          record(afterRefunded, 'paid', 'k2', 'o-4'),
        ],
      });
      await eventually('the last record of each key applied', async () => {
        const repo = db.dataSource.getRepository(Shipment);
        return (await repo.countBy({ messageId: afterPaid })) === 1 && (await repo.countBy({ messageId: afterRefunded })) === 1;
      });
    } finally {
      await producer.disconnect();
    }
    const shipments = await db.dataSource.getRepository(Shipment).find();
    expect(shipments.map((s) => `${s.messageId}=${s.orderKey}`).sort()).toEqual(
      [`${paid}=k1:o-1`, `${afterPaid}=k1:o-3`, `${afterRefunded}=k2:o-4`].sort(),
    );
  });

  it('the producer side is refused with the fix: the explicit API at the call, a decorated method at boot', async () => {
    await expect(microservice.get(TransactionalMessageProducer).sendHalfMessage({ topic: 'x', body: {} })).rejects.toThrow(
      /needs the producer side, and TransactionalMessageModule has no producerGroup/,
    );
    @Injectable()
    class Sender {
      @TransactionalMessage({ topic: 'order.paid', body: () => ({}) })
      async send(): Promise<void> {}
    }
    const moduleRef = await Test.createTestingModule({
      imports: [TransactionalMessageModule.forRoot({ dataSource: db.dataSource })],
      providers: [Sender],
    }).compile();
    moduleRef.useLogger(false);
    await expect(moduleRef.init().finally(() => moduleRef.close())).rejects.toThrow(
      /@TransactionalMessage method Sender.send sends messages, but TransactionalMessageModule has no producerGroup/,
    );
  });
});
