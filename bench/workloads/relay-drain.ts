import type { DataSource } from 'typeorm';
import { onTransactionalMessageEvent, type KafkaClientName, type KafkaOptions, type MessagePublisher } from 'nestjs-transactional-message';
import { benchApp } from '../app.js';
import { BENCH_CLIENT, body, kafka, KAFKA_BROKERS, waitUntil } from '../harness.js';

/**
 * Inserts `count` COMMITTED messages (~200-byte JSON bodies, `keys` distinct keys), as the relay
 * finds them after a burst of commits, each with its key bucket as the library writes it with
 * relay (32-bit FNV-1a of the key modulo 256; the keys are ASCII, so characters
 * are bytes). One statement per `chunk` messages (each commits on its own).
 */
export async function seedCommitted(db: DataSource, topic: string, count: number, keys = 1_000, chunk = 50_000): Promise<void> {
  const sample = JSON.stringify(body(0));
  for (let offset = 0; offset < count; offset += chunk) {
    const n = Math.min(chunk, count - offset);
    await db.query(
      `WITH RECURSIVE k(key) AS (SELECT 'key-' || g FROM generate_series(0, $2::int - 1) g),
         f(key, i, h) AS (SELECT key, 0, 2166136261::bigint FROM k
           UNION ALL SELECT key, i + 1, ((h # ascii(substr(key, i + 1, 1))) * 16777619) & 4294967295 FROM f WHERE i < length(key)),
         b AS (SELECT key, (h & 255)::smallint AS bucket FROM f WHERE i = length(key))
       INSERT INTO transactional_message (id, producer_group, topic, message_key, body, content_type, status, created_at,
         transaction_ended_at, check_immunity_ms, next_attempt_at, bucket)
       SELECT gen_random_uuid(), 'bench', $1, 'key-' || (g % $2), convert_to(replace($3, 'order-0', 'order-' || g), 'UTF8'),
         'application/json', 'COMMITTED', now(), now(), 10000, now(), b.bucket
       FROM generate_series($4::int, $5::int) g JOIN b ON b.key = 'key-' || (g % $2) ORDER BY g`,
      [topic, keys, sample, offset + 1, offset + n],
    );
  }
  await db.query('ANALYZE transactional_message');
}

/** Records on a topic, from its partitions' end offsets (no consumer in the measured process). */
export async function topicSize(topic: string): Promise<number> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** A drain's rates: from before the relays booted, and from the start of their first publish request. */
export interface DrainRates {
  withBoot: number;
  fromFirstPublish: number;
}

/**
 * Starts `relays` relays on `db` (application instances in this process, sharing its pool) and
 * returns messages/s until all `count` messages are DELIVERED (published and acknowledged, then
 * marked), checked against the topic's end offsets (`topic` null: a `publisher` of the caller's,
 * such as a no-op sink, is checked by the caller). With the relays' boot; `drainRates` gives both.
 */
export async function drainWithRelay(...args: Parameters<typeof drainRates>): Promise<number> {
  return (await drainRates(...args)).withBoot;
}

export async function drainRates(
  db: DataSource,
  topic: string | null,
  count: number,
  batchSize = 500,
  relays = 1,
  publisher?: MessagePublisher,
  client: KafkaClientName | undefined = BENCH_CLIENT,
  relay: { retentionMs?: number } = {},
  /** More `kafka` options (e.g. `exactlyOnce`). */
  kafkaOptions: Partial<KafkaOptions> = {},
): Promise<DrainRates> {
  const started = performance.now();
  let firstPublish: number | undefined;
  const off = onTransactionalMessageEvent('batch.published', (event) => {
    firstPublish ??= performance.now() - event.durationMs;
  });
  const sink = publisher ? { publisher, kafka: undefined } : { kafka: { ...(client ? { client } : {}), brokers: KAFKA_BROKERS, clientId: 'tm-bench-relay', ...kafkaOptions } };
  const apps = await Promise.all(Array.from({ length: relays }, () => benchApp(db, { relay: { batchSize, pollIntervalMs: 50, ...relay }, ...sink })));
  try {
    // A probe of the committed messages' index, not a count: the poll must not load the database it measures.
    await waitUntil('all delivered', async () => {
      const [{ left }] = await db.query(`SELECT EXISTS (SELECT 1 FROM transactional_message WHERE status = 'COMMITTED') AS left`);
      return !left;
    }, 600_000, 10);
    const ended = performance.now();
    const rates = { withBoot: count / ((ended - started) / 1000), fromFirstPublish: count / ((ended - (firstPublish ?? started)) / 1000) };
    if (topic === null) return rates;
    const published = await topicSize(topic);
    if (published < count) throw new Error(`bench: ${count} messages marked delivered but only ${published} records on ${topic}`);
    return rates;
  } finally {
    off();
    for (const app of apps) await app.close();
  }
}
