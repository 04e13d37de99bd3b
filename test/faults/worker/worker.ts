// A small application that uses the library as a user would (the built package), run as a child
// process by the fault tests so that it can be killed (SIGKILL), paused (SIGSTOP) and restarted.
// Roles: `app` (a producer loop writing orders with @TransactionalMessage, the relay, a check
// handler), `consumer` (a kafkajs consumer behind the TransactionalInbox), `explicit` (the
// explicit two-phase API). Everything it does is recorded in the fault_* tables for the oracle.
import 'reflect-metadata';
import { appendFileSync } from 'node:fs';
import { Injectable, Module, type DynamicModule, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Kafka, logLevel } from 'kafkajs';
import { DataSource, type EntityManager } from 'typeorm';
import {
  currentHalfMessage,
  KafkaPublisher,
  MESSAGE_ID_HEADER,
  TransactionCheckHandler,
  TransactionContext,
  TransactionalInbox,
  TransactionalMessage,
  TransactionalMessageModule,
  TransactionalMessageProducer,
  TransactionStatus,
  type HalfMessage,
  type MessagePublisher,
  type OutgoingMessage,
  type PublishFailure,
} from 'nestjs-transactional-message';
import { CRASH_EXIT_CODE, WORKER_ENV, type Intent, type WorkerConfig, type WorkerEvent } from './protocol.js';

// Diagnostics (TM_FAULT_PG_TRACE=1): where a pg client that errors with no listener was checked out and released.
if (process.env.TM_FAULT_PG_TRACE === '1') {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const Pool = require('pg-pool');
  const { Client } = require('pg');
  const connect = Pool.prototype.connect;
  Pool.prototype.connect = function (this: any, ...args: any[]) {
    const stack = new Error('checked out at').stack;
    const cb = args[0];
    if (typeof cb === 'function') {
      return connect.call(this, (err: any, client: any, release: any) => {
        if (client) client.__checkout = stack;
        cb(err, client, release);
      });
    }
    return connect.call(this).then((client: any) => {
      client.__checkout = stack;
      return client;
    });
  };
  const emit = Client.prototype.emit;
  Client.prototype.emit = function (this: any, event: string, ...args: any[]) {
    if (event === 'error' && this.listenerCount('error') === 0) {
      console.error(`[pg-trace] unhandled client error ${args[0]?.message}; ${this.__checkout ?? 'never checked out by a pool'}`);
    }
    return emit.call(this, event, ...args);
  };
}

const config: WorkerConfig = JSON.parse(process.env[WORKER_ENV] ?? 'null');
if (!config) throw new Error(`${WORKER_ENV} is not set: this script is started by the fault tests (test/faults)`);

const emit = (event: WorkerEvent): void => {
  // Synchronous: a line printed just before a self-inflicted SIGKILL must not be lost.
  appendFileSync(1, `${JSON.stringify(event)}\n`);
};

// What Node would do by default (end the process), said on stdout first: the harness fails the test
// on a 'crash' event, and tells it from an injected kill (SIGKILL by the test or a 'fault' seam).
for (const kind of ['unhandledRejection', 'uncaughtException'] as const) {
  process.on(kind, (error: unknown) => {
    emit({ event: 'crash', pid: process.pid, kind, error: String((error as Error)?.stack ?? error) });
    process.exit(CRASH_EXIT_CODE);
  });
}

/** `$1` on PostgreSQL, `?` on MariaDB. */
const P = (i: number): string => (config.database.type === 'postgres' ? `$${i}` : '?');
const placeholders = (count: number, width: number): string =>
  Array.from({ length: count }, (_, row) => `(${Array.from({ length: width }, (_, col) => P(row * width + col + 1)).join(', ')})`).join(', ');

interface OrderInput {
  no: string;
  key: string;
  keySeq: number;
  intent: Intent;
}

/** The business service: one order per call, its message written in the same transaction. */
@Injectable()
class OrderService {
  constructor(private readonly tx: TransactionContext) {}

  @TransactionalMessage<[OrderInput]>({
    topic: config.topic,
    key: ([o]) => o.key,
    body: ([o]) => ({ no: o.no, key: o.key, keySeq: o.keySeq, intent: o.intent }),
  })
  async place(o: OrderInput): Promise<void> {
    const paid = o.intent === 'commit' || o.intent === 'unknown-commit';
    await this.tx.manager.query(`INSERT INTO fault_order (no, message_id, state) VALUES (${P(1)}, ${P(2)}, ${P(3)})`, [
      o.no,
      currentHalfMessage().id,
      paid ? 'paid' : 'cancelled',
    ]);
    if (o.intent === 'rollback') currentHalfMessage().rollback();
    if (o.intent === 'unknown-commit' || o.intent === 'unknown-rollback') currentHalfMessage().unknown();
  }
}

/** The check handler: looks the order up (or misbehaves, as configured) and records every call. */
@Injectable()
class OrderChecker {
  constructor(private readonly dataSource: DataSource) {}

  @TransactionCheckHandler()
  async check(half: HalfMessage): Promise<TransactionStatus> {
    const ds = this.dataSource;
    const calledAt = Date.now();
    const [row] = await ds.query(`SELECT status FROM ${config.tableName} WHERE id = ${P(1)}`, [half.id]);
    const record = (answer: string) =>
      ds.query(
        `INSERT INTO fault_check_call (message_id, check_count, status_at_call, answer, pid, called_ms) VALUES (${P(1)}, ${P(2)}, ${P(3)}, ${P(4)}, ${P(5)}, ${P(6)})`,
        [half.id, half.checkCount, row?.status ?? 'ABSENT', answer, process.pid, calledAt],
      );
    switch (config.checkMode) {
      case 'throw':
        await record('THROW');
        throw new Error(`check handler failure (injected) for ${half.id}`);
      case 'hang':
        await record('HANG');
        return new Promise<never>(() => undefined);
      case 'unknown':
        await record(TransactionStatus.UNKNOWN);
        return TransactionStatus.UNKNOWN;
      default: {
        if (config.checkMode === 'slow') await new Promise((resolve) => setTimeout(resolve, 400));
        const [order] = await ds.query(`SELECT state FROM fault_order WHERE message_id = ${P(1)}`, [half.id]);
        let answer: TransactionStatus;
        if (order) answer = order.state === 'paid' ? TransactionStatus.COMMIT : TransactionStatus.ROLLBACK;
        // No order: its local transaction never committed; after 2 s it never will (explicit API crash).
        else answer = Date.now() - half.bornAt.getTime() > 2_000 ? TransactionStatus.ROLLBACK : TransactionStatus.UNKNOWN;
        await record(answer);
        return answer;
      }
    }
  }
}

/** The real Kafka publisher with the crash seams of `config.fault` and a record of every publish. */
class FaultPublisher implements MessagePublisher {
  private publishes = 0;
  private connects = 0;

  constructor(
    private readonly inner: MessagePublisher,
    private readonly dataSource: DataSource,
  ) {}

  async connect(): Promise<void> {
    this.connects++;
    if (config.fault?.kind === 'stop-in-connect' && this.connects === config.fault.at) {
      emit({ event: 'fault', pid: process.pid, kind: config.fault.kind, ids: [] });
      process.kill(process.pid, 'SIGSTOP');
    }
    await this.inner.connect();
  }

  /** The inner publisher's slots (kafka.exactlyOnce): the relay leases buckets by slot for them. */
  get slotTransactions(): unknown {
    return (this.inner as { slotTransactions?: unknown }).slotTransactions;
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    this.publishes++;
    const ids = messages.map((m) => m.id);
    if (config.fault?.kind === 'stop-before-publish' && this.publishes === config.fault.at) {
      emit({ event: 'fault', pid: process.pid, kind: config.fault.kind, ids });
      process.kill(process.pid, 'SIGSTOP');
    }
    if (config.fault?.kind === 'kill-before-publish' && this.publishes === config.fault.at) {
      emit({ event: 'fault', pid: process.pid, kind: config.fault.kind, ids });
      process.kill(process.pid, 'SIGKILL');
    }
    await this.record(ids, 'attempt');
    await this.inner.publish(messages);
    if (config.fault?.kind === 'kill-after-publish' && this.publishes === config.fault.at) {
      emit({ event: 'fault', pid: process.pid, kind: config.fault.kind, ids });
      process.kill(process.pid, 'SIGKILL');
    }
    await this.record(ids, 'acked');
  }

  classify(error: unknown): PublishFailure {
    return this.inner.classify(error);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async record(ids: string[], phase: 'attempt' | 'acked'): Promise<void> {
    // Best effort: a record lost to a database fault must not turn into a publish failure.
    const values = ids.flatMap((id) => [id, phase, process.pid, config.name]);
    await this.dataSource
      .query(`INSERT INTO fault_publish (message_id, phase, pid, worker) VALUES ${placeholders(ids.length, 4)}`, values)
      .catch(() => undefined);
  }
}

@Module({})
class WorkerModule {}

function dataSource(): DataSource {
  const { type, url } = config.database;
  return new DataSource({
    type,
    url,
    // Connections die in some tests (pg_terminate_backend, a restarted server): keep the pool small and quick to notice.
    extra: type === 'postgres' ? { max: 10, connectionTimeoutMillis: 5_000 } : { connectionLimit: 10, connectTimeout: 5_000 },
    logging: false,
  } as ConstructorParameters<typeof DataSource>[0]);
}

async function createApp(ds: DataSource, relay: boolean, providers: Function[]): Promise<INestApplicationContext> {
  const publisher = new FaultPublisher(new KafkaPublisher({
      // TM_KAFKA_CLIENT runs the suite on another Kafka client ('kafkajs', '@platformatic/kafka').
      ...(process.env.TM_KAFKA_CLIENT ? { client: process.env.TM_KAFKA_CLIENT as 'kafkajs' | '@platformatic/kafka' } : {}),
      ...(config.kafkaClient ? { client: config.kafkaClient } : {}),
      brokers: config.brokers,
      clientId: `tm-fault-${config.name}`,
      ...(config.exactlyOnce ? { exactlyOnce: config.exactlyOnce } : {}),
    }), ds);
  const library: DynamicModule = TransactionalMessageModule.forRoot({
    dataSource: ds,
    producerGroup: config.producerGroup,
    tableName: config.tableName,
    checkImmunityMs: config.checkImmunityMs ?? 500,
    publisher,
    relay: { enabled: relay, ...config.relayOptions },
    check: { ...config.checkOptions },
    inbox: { enabled: config.role === 'consumer' },
  });
  return NestFactory.createApplicationContext(
    { module: WorkerModule, imports: [library], providers: [...(providers as any[]), { provide: DataSource, useValue: ds }] },
    // A boot failure rejects (and is reported as 'failed') instead of Nest's process.abort().
    { logger: process.env.TM_FAULT_LOGS === '0' ? false : ['error', 'warn', 'log'], abortOnError: false },
  );
}

/** Which outcome the `keySeq`-th order of `key` gets, deterministic so that restarts agree. */
function intentOf(key: string, keySeq: number): Intent {
  const [commit, rollback, unknownCommit] = config.produce?.mix ?? [100, 0, 0, 0];
  let h = 2166136261;
  for (const c of `${key}#${keySeq}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const r = h % 100;
  if (r < commit) return 'commit';
  if (r < commit + rollback) return 'rollback';
  if (r < commit + rollback + unknownCommit) return 'unknown-commit';
  return 'unknown-rollback';
}

/** One sequential writer per key; resumes after the last order a previous process of this key started. */
async function produce(app: INestApplicationContext, ds: DataSource): Promise<void> {
  const { keys, perKey } = config.produce!;
  const service = app.get(OrderService);
  let count = 0;
  await Promise.all(
    keys.map(async (key) => {
      const [last] = await ds.query(`SELECT MAX(key_seq) AS m FROM fault_intent WHERE msg_key = ${P(1)}`, [key]);
      for (let keySeq = Number(last?.m ?? 0) + 1; keySeq <= perKey; keySeq++) {
        const order: OrderInput = { no: `${key}#${keySeq}`, key, keySeq, intent: intentOf(key, keySeq) };
        // The intent is recorded before the transaction: a write killed midway is known to the oracle.
        await retry(() =>
          ds.query(`INSERT INTO fault_intent (no, msg_key, key_seq, intent, writer) VALUES (${P(1)}, ${P(2)}, ${P(3)}, ${P(4)}, ${P(5)})`, [
            order.no,
            key,
            keySeq,
            order.intent,
            config.name,
          ]),
        );
        // A failed write (a dropped connection) is not retried: it is recorded as never committed, unless it did.
        await service.place(order).catch((error: unknown) => console.error(`order ${order.no} failed: ${(error as Error).message}`));
        count++;
        if (config.produce!.pauseMs) await new Promise((resolve) => setTimeout(resolve, config.produce!.pauseMs));
      }
    }),
  );
  emit({ event: 'produced', pid: process.pid, count });
}

/** The explicit two-phase API, with its crash seams. */
async function explicit(app: INestApplicationContext, ds: DataSource): Promise<void> {
  const producer = app.get(TransactionalMessageProducer);
  const fault = config.fault;
  for (let i = 1; i <= (config.explicitCount ?? 0); i++) {
    const key = `x-${i % 4}`;
    const no = `${config.name}#${i}`;
    await ds.query(`INSERT INTO fault_intent (no, msg_key, key_seq, intent, writer) VALUES (${P(1)}, ${P(2)}, ${P(3)}, ${P(4)}, ${P(5)})`, [
      no,
      key,
      i,
      'explicit', // ended by commit() or, after a crash, by the check: neither decided in the write nor ordered
      config.name,
    ]);
    const id = await producer.sendHalfMessage({ topic: config.topic, key, body: { no, key, keySeq: i, intent: 'commit' } });
    if (fault?.kind === 'kill-after-half' && fault.at === i) {
      emit({ event: 'fault', pid: process.pid, kind: fault.kind, ids: [id] });
      process.kill(process.pid, 'SIGKILL');
    }
    await ds.transaction((m: EntityManager) =>
      m.query(`INSERT INTO fault_order (no, message_id, state) VALUES (${P(1)}, ${P(2)}, ${P(3)})`, [no, id, 'paid']),
    );
    if (fault?.kind === 'kill-after-local' && fault.at === i) {
      emit({ event: 'fault', pid: process.pid, kind: fault.kind, ids: [id] });
      process.kill(process.pid, 'SIGKILL');
    }
    await producer.commit(id);
  }
  emit({ event: 'produced', pid: process.pid, count: config.explicitCount ?? 0 });
}

/** A kafkajs consumer whose effect runs through the inbox; every delivery and every effect is recorded. */
async function consume(app: INestApplicationContext, ds: DataSource): Promise<() => Promise<void>> {
  const inbox = app.get(TransactionalInbox);
  const kafka = new Kafka({ brokers: config.brokers, clientId: `tm-fault-${config.name}`, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: config.consumerGroup!, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 100 });
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) {
      // The test's supervisor starts a new consumer, as a process manager would.
      emit({ event: 'consumer-crashed', pid: process.pid, error: String(e.payload.error) });
      process.exit(3);
    }
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [config.topic], fromBeginning: true });
  await consumer.run({
    // One partition at a time (kafkajs' default). With partitionsConsumedConcurrently: 3 the chaos
    // run saw effects out of key order twice while the topic itself was in order; see test/faults/RESULTS.md.
    partitionsConsumedConcurrently: config.consumerConcurrency ?? 1,
    eachMessage: async ({ partition, message }) => {
      const id = String(message.headers?.[MESSAGE_ID_HEADER] ?? '');
      const body = JSON.parse(message.value!.toString('utf8')) as { no: string; key: string; keySeq: number };
      await ds.query(`INSERT INTO fault_delivery (message_id, no, pid, partition_no, offset_no) VALUES (${P(1)}, ${P(2)}, ${P(3)}, ${P(4)}, ${P(5)})`, [
        id,
        body.no,
        process.pid,
        partition,
        message.offset,
      ]);
      await inbox
        .process('fault-consumer', id, (m) =>
          m.query(`INSERT INTO fault_effect (message_id, no, msg_key, key_seq) VALUES (${P(1)}, ${P(2)}, ${P(3)}, ${P(4)})`, [
            id,
            body.no,
            body.key,
            body.keySeq,
          ]),
        )
        .catch((error: unknown) => {
          // kafkajs retries the record; say why it failed.
          console.error(`processing ${id} failed: ${(error as Error)?.stack ?? error}`);
          throw error;
        });
    },
  });
  return () => consumer.disconnect();
}

async function retry<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function main(): Promise<void> {
  const ds = await retry(() => dataSource().initialize());
  const providers: Function[] = [];
  if (config.role === 'app') providers.push(OrderService);
  if (config.role === 'app' && config.checkMode !== 'none') providers.push(OrderChecker);
  const app = await createApp(ds, config.role === 'app' && config.relay, providers);
  let stopConsumer: (() => Promise<void>) | undefined;
  if (config.role === 'consumer') stopConsumer = await consume(app, ds);
  // A worker runs until it is stopped: an idle one (a writer done producing, its pool's idle
  // connections closed) must not end by itself, which the harness would take for a crash.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  process.once('SIGTERM', () => {
    clearInterval(keepAlive);
    void (async () => {
      await stopConsumer?.().catch(() => undefined);
      await app.close();
      await ds.destroy();
      emit({ event: 'closed', pid: process.pid });
      // Whatever of the library were still running (a timer, a loop, a connection) would keep the process alive.
      if (!config.exitByItself) process.exit(0);
    })();
  });
  emit({ event: 'ready', pid: process.pid });
  if (config.fault?.kind === 'unhandled-rejection') {
    setTimeout(() => void Promise.reject(new Error('a rejection nobody handles (injected)')), config.fault.afterMs);
  }
  if (config.role === 'app' && config.produce) await produce(app, ds);
  if (config.role === 'explicit') await explicit(app, ds);
}

main().catch((error: unknown) => {
  console.error(`worker ${config.name} failed: ${(error as Error)?.stack ?? error}`);
  emit({ event: 'failed', pid: process.pid, error: String((error as Error)?.message ?? error) });
  process.exit(1);
});
