// Probe behind bench/RESULTS.md, workload 1: what one transaction costs with the message row
// written by @TransactionalMessage, against the same INSERT written by hand in SQL.
// node bench/dist/probes/write-cost.js
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { TransactionalMessage, TransactionContext } from 'nestjs-transactional-message';
import { benchApp, BenchOrder, orderRow } from '../app.js';
import { benchDatabase, body } from '../harness.js';

@Injectable()
class NoKeyWriter {
  constructor(private readonly tx: TransactionContext) {}
  @TransactionalMessage<[number, string]>({ topic: 'tm-bench.x', body: ([i]) => body(i) })
  async write(i: number, run: string) { await this.tx.manager.insert(BenchOrder, orderRow(i, run)); }
}
async function rate(count: number, c: number, call: (i: number) => Promise<unknown>) {
  let next = 0; const t = performance.now();
  await Promise.all(Array.from({ length: c }, async () => { while (next < count) await call(next++); }));
  return Math.round(count / ((performance.now() - t) / 1000));
}
const db = await benchDatabase([BenchOrder]);
const app = await benchApp(db.dataSource, { relay: { enabled: false, listenNotify: false } }, [NoKeyWriter]);
const { OrderWriter } = await import('../app.js');
const writer = app.get(OrderWriter);
const sql = `INSERT INTO transactional_message (id, producer_group, topic, message_key, tags, properties, body, content_type, status, check_immunity_ms, created_at, transaction_ended_at, next_check_at, next_attempt_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10, statement_timestamp(), statement_timestamp(), NULL, statement_timestamp())`;
const lockSql = `INSERT INTO transactional_message (id, producer_group, topic, message_key, tags, properties, body, content_type, status, check_immunity_ms, created_at, transaction_ended_at, next_check_at, next_attempt_at) SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10, statement_timestamp(), statement_timestamp(), NULL, statement_timestamp() FROM (SELECT pg_advisory_xact_lock($11::int, $12::int)) k`;
const params = (i: number) => [randomUUID(), 'bench', 't', `key-${i % 1000}`, null, null, Buffer.from(JSON.stringify(body(i))), 'application/json', 'COMMITTED', 10000];
for (const c of [16]) {
  for (let round = 0; round < 2; round++) {
    const r = randomUUID().slice(0, 6);
    const res: Record<string, number> = {};
    res.plain = await rate(2000, c, (i) => writer.plain(i, `a${r}`));
    res.plainPlusRawInsert = await rate(2000, c, (i) => db.dataSource.transaction(async (m) => { await m.insert(BenchOrder, orderRow(i, `b${r}`)); await m.query(sql, params(i)); }));
    res.plainPlusRawLockedInsert = await rate(2000, c, (i) => db.dataSource.transaction(async (m) => { await m.insert(BenchOrder, orderRow(i, `c${r}`)); await m.query(lockSql, [...params(i), 1, i % 1000]); }));
    res.decoratedNoKey = await rate(2000, c, (i) => app.get(NoKeyWriter).write(i, `d${r}`));
    res.decorated = await rate(2000, c, (i) => writer.decorated(i, `e${r}`));
    console.log(c, JSON.stringify(res));
  }
}
await app.close(); await db.drop(); process.exit(0);
