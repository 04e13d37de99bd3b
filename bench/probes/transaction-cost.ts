// Probe behind bench/RESULTS.md, "What a Kafka transaction per batch costs" (issue 23, exactly-once):
// the same messages published in batches of 500 to a 6-partition topic, side by side in one run,
// on each client: through the library's at-least-once publisher (an idempotent producer, one send
// per batch) and through the transactional producer of the exactly-once design (one transaction
// per batch, with its marks record on a marks topic). Kafka only, no database: the difference is
// what the transactions add to the publish. The transactional producer is internal (not exported),
// so it is loaded from the built package (bash scripts/bench.sh builds it).
// node bench/dist/probes/transaction-cost.js [count] [rounds]
import { Logger } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { KafkaPublisher, KAFKA_CLIENTS, type KafkaClientName, type OutgoingMessage } from 'nestjs-transactional-message';
import { createTopic, deleteCreatedTopics, KAFKA_BROKERS, uniqueTopic } from '../harness.js';

interface TransactionalProducer {
  start(): Promise<void>;
  send(records: { topic: string; partition?: number; key?: Buffer; value: Buffer; headers?: Record<string, string> }[]): Promise<void>;
  close(): Promise<void>;
}
const internal = (await import(resolve(process.cwd(), 'dist/cjs/publisher/kafka/transactional-producer.js'))) as {
  createTransactionalKafkaProducer(client: KafkaClientName, options: { brokers: string[] }, transactionalId: string, clientId?: string): TransactionalProducer;
};
const marksModule = (await import(resolve(process.cwd(), 'dist/cjs/publisher/kafka/marks-record.js'))) as {
  encodeMarksRecord(marks: { slot: number; sequence: number; ids: string[] }): { key: Buffer; value: Buffer };
};

// The clients' debug lines go to Nest's logger; no application here sets its levels.
Logger.overrideLogger(['error', 'warn']);
const count = Number(process.argv[2] ?? 20_000);
const rounds = Number(process.argv[3] ?? 2);
const BATCH = 500;
const body = Buffer.from(JSON.stringify({ orderId: 'o-123456', amount: 100, items: [1, 2, 3] }));

function batches(topic: string): OutgoingMessage[][] {
  const all: OutgoingMessage[] = [];
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    all.push({ id, topic, key: `order-${i % 1000}`, value: body, headers: { 'tm-message-id': id, 'tm-producer-group': 'bench' }, timestamp: new Date() });
  }
  const out: OutgoingMessage[][] = [];
  for (let i = 0; i < all.length; i += BATCH) out.push(all.slice(i, i + BATCH));
  return out;
}

async function atLeastOnce(client: KafkaClientName, topic: string): Promise<number> {
  const publisher = new KafkaPublisher({ client, brokers: KAFKA_BROKERS, clientId: 'tm-bench' });
  await publisher.connect();
  const work = batches(topic);
  const started = performance.now();
  for (const batch of work) await publisher.publish(batch);
  const rate = count / ((performance.now() - started) / 1000);
  await publisher.close();
  return rate;
}

async function transactional(client: KafkaClientName, topic: string, marks: string): Promise<number> {
  const producer = internal.createTransactionalKafkaProducer(client, { brokers: KAFKA_BROKERS }, `tm-bench-${randomBytes(4).toString('hex')}`, 'tm-bench');
  await producer.start();
  const work = batches(topic);
  const started = performance.now();
  let sequence = 0;
  for (const batch of work) {
    const records: Parameters<TransactionalProducer['send']>[0] = batch.map((m) => ({ topic: m.topic, key: Buffer.from(m.key!), value: m.value, headers: { ...m.headers } }));
    records.push({ topic: marks, partition: 0, ...marksModule.encodeMarksRecord({ slot: 0, sequence: ++sequence, ids: batch.map((m) => m.id) }) });
    await producer.send(records);
  }
  const rate = count / ((performance.now() - started) / 1000);
  await producer.close();
  return rate;
}

console.log(`${count} messages in batches of ${BATCH}, 6 partitions, ${rounds} rounds; msg/s (transactional / at least once)`);
for (const client of KAFKA_CLIENTS) {
  for (let round = 1; round <= rounds; round++) {
    const [a, b, marks] = [uniqueTopic('tx-cost-alo'), uniqueTopic('tx-cost-eo'), uniqueTopic('tx-cost-marks')];
    await createTopic(a);
    await createTopic(b);
    await createTopic(marks, 1);
    // Alternating which goes first, so neither always runs on a warmer broker.
    const [alo, eo] = round % 2 ? [await atLeastOnce(client, a), await transactional(client, b, marks)] : await (async () => {
      const e = await transactional(client, b, marks);
      return [await atLeastOnce(client, a), e];
    })();
    console.log(`  ${client}, round ${round}: at least once ${alo.toFixed(0)}, transactional ${eo.toFixed(0)} (${(eo / alo).toFixed(2)})`);
  }
}
await deleteCreatedTopics();
process.exit(0);
