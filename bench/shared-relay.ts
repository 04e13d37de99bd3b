// One relay of several on one database, in a process of its own (workload 9): boots, says
// TM_BENCH_READY, publishes what its key buckets hold until the parent writes a line on stdin, then
// prints how many messages it published and when it published the last (epoch ms, comparable
// across processes) and exits.
//
//   node bench/dist/shared-relay.js <client> <database url>
import 'reflect-metadata';
import { createInterface } from 'node:readline';
import { DataSource } from 'typeorm';
import type { KafkaClientName } from 'nestjs-transactional-message';
import { onTransactionalMessageEvent } from 'nestjs-transactional-message';
import { benchApp } from './app.js';
import { KAFKA_BROKERS } from './harness.js';

/** What one relay prints at the end. */
export interface SharedRelayRun {
  published: number;
  /** Epoch ms of its last acknowledgement (null: it published nothing). */
  lastAt: number | null;
}

const [client, url] = process.argv.slice(2) as [KafkaClientName, string];
const now = () => performance.timeOrigin + performance.now();

async function main(): Promise<SharedRelayRun> {
  const dataSource = await new DataSource({ type: 'postgres', url, extra: { max: 20 } }).initialize();
  let published = 0;
  let lastAt: number | null = null;
  const off = onTransactionalMessageEvent('batch.published', (event) => {
    published += event.count;
    lastAt = now();
  });
  // A lease of 3 s: the relays rebalance their shares within a second (maintenance every lease / 3).
  const app = await benchApp(dataSource, {
    relay: { batchSize: 500, pollIntervalMs: 50, leaseMs: 3_000 },
    kafka: { client, brokers: KAFKA_BROKERS, clientId: 'tm-bench-shared' },
  });
  console.log('TM_BENCH_READY');
  for await (const _line of createInterface({ input: process.stdin })) break;
  off();
  await app.close();
  await dataSource.destroy();
  return { published, lastAt };
}

main().then(
  (run) => {
    console.log(`TM_BENCH_SHARED ${JSON.stringify(run)}`);
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
