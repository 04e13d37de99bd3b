// An application instance of the earlier version (the row-lease relay), run by test/upgrade.e2e-spec.ts
// as a process of its own: the packed earlier version (row-lease-relay-441e8f8.tgz, unpacked by the
// test) with the dependencies of this repository. Configured by the JSON in TM_UPGRADE_CONFIG:
//   { packageEntry, url, topic, brokers, producerGroup, mode: 'migrate' | 'run', relay, writeKeys,
//     failKey, failTimes, slowKey, slowAfter, slowMs }
// 'migrate' runs the earlier version's migrations and exits; 'run' boots the module (its relay on
// relay.ownership 'rows') and, with writeKeys, writes messages of those keys until SIGTERM, each
// numbered per key in its transaction (table upgrade_counter). Every publish is printed as a JSON
// line as it begins ({ event: 'publish-start', no, ids, keys, start }) and as it ends
// ({ event: 'publish', relay: 'earlier', no, ids, keys, start, end, ok }). With slowKey, the first
// publish of that key after `slowAfter` publishes waits for SIGUSR2 (at most `slowMs`) first (a
// slow broker), printing { event: 'slow-publish' } as it begins: its batch stays leased meanwhile.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { pathToFileURL } from 'node:url';
import { DataSource } from 'typeorm';

const config = JSON.parse(process.env.TM_UPGRADE_CONFIG ?? 'null');
const lib = await import(pathToFileURL(config.packageEntry).href);
const print = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const dataSource = await new DataSource({
  type: 'postgres',
  url: config.url,
  migrations: config.mode === 'migrate' ? lib.transactionalMessageMigrations() : [],
  extra: { max: 6 },
}).initialize();

if (config.mode === 'migrate') {
  const ran = await dataSource.runMigrations();
  print({ event: 'migrated', names: ran.map((m) => m.name) });
  await dataSource.destroy();
  process.exit(0);
}

class Injected extends Error {}
let failures = 0;
let publishes = 0;
let slowed = false;
const inner = new lib.KafkaPublisher({ brokers: config.brokers, clientId: 'tm-test-upgrade-earlier' });
const publisher = {
  connect: () => inner.connect(),
  async publish(messages) {
    const start = Date.now();
    const record = { event: 'publish', relay: 'earlier', no: publishes + 1, ids: messages.map((m) => m.id), keys: [...new Set(messages.map((m) => m.key))] };
    // Also as it begins: a publish cut short by the shutdown never prints its end.
    print({ ...record, event: 'publish-start', start });
    try {
      publishes++;
      if (config.slowKey && !slowed && publishes > config.slowAfter && messages.some((m) => m.key === config.slowKey)) {
        slowed = true;
        print({ event: 'slow-publish', ids: record.ids });
        // Until the test says (SIGUSR2), at most slowMs.
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, config.slowMs);
          process.once('SIGUSR2', () => (clearTimeout(timer), resolve()));
        });
      }
      if (config.failKey && failures < config.failTimes && messages.some((m) => m.key === config.failKey)) {
        failures++;
        throw new Injected(`refused for now (injected ${failures}/${config.failTimes})`);
      }
      await inner.publish(messages);
      print({ ...record, start, end: Date.now(), ok: true });
    } catch (error) {
      print({ ...record, start, end: Date.now(), ok: false });
      throw error;
    }
  },
  classify: (error) => (error instanceof Injected ? { kind: 'message', retriable: true } : inner.classify(error)),
  close: () => inner.close(),
};

class Root {}
Module({
  imports: [
    lib.TransactionalMessageModule.forRoot({
      dataSource,
      producerGroup: config.producerGroup,
      publisher,
      relay: { ...config.relay, ownership: 'rows' },
    }),
  ],
})(Root);
const app = await NestFactory.createApplicationContext(Root, { logger: ['error', 'warn', 'log'] });
const producer = app.get(lib.TransactionalMessageProducer);

let writing = true;
const written = (async () => {
  if (!config.writeKeys) return;
  for (let i = 0; writing; i++) {
    const key = config.writeKeys[i % config.writeKeys.length];
    await dataSource
      .transaction(async (manager) => {
        const [{ n }] = await manager.query(`WITH u AS (UPDATE upgrade_counter SET n = n + 1 WHERE msg_key = $1 RETURNING n) SELECT n FROM u`, [key]);
        const id = await producer.sendHalfMessage({ topic: config.topic, key, body: { key, n, by: 'earlier' } }, { manager });
        await producer.commit(id, { manager });
      })
      .catch((error) => print({ event: 'write-failed', error: String(error?.message ?? error) }));
    await new Promise((resolve) => setTimeout(resolve, config.writeIntervalMs ?? 10));
  }
})();

process.once('SIGTERM', async () => {
  writing = false;
  await written;
  await app.close();
  await dataSource.destroy();
  print({ event: 'closed' });
  process.exit(0);
});
print({ event: 'ready' });
