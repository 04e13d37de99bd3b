import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { TransactionalMessageProducer, TransactionStatus } from '../src/index.js';
import type { MessageRow } from '../src/store/message-row.js';
import { DeliveryStore, type DeliveryClaim } from '../src/store/delivery.store.js';
import { MessageStore } from '../src/store/message.store.js';
import { SqlParams } from '../src/store/sql-params.js';
import { createTestDatabase, DATABASE_KINDS, messageRows, type TestDatabase } from './support/databases.js';
import { createShopApp } from './support/shop.fixture.js';

/**
 * The delivery claim and its after-claim check, statement by statement, with leases set by hand
 * to the states that concurrent relays produce (a relay's own tests cannot hold them still).
 */
describe.each(DATABASE_KINDS)('the delivery claim on %s', (kind) => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let producer: TransactionalMessageProducer;
  let store: DeliveryStore;
  const q = (name: string) => (kind === 'mariadb' ? `\`${name}\`` : `"${name}"`);

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await createShopApp(db);
    producer = app.get(TransactionalMessageProducer);
    store = app.get(DeliveryStore);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    await db.dataSource.query(`DELETE FROM ${q(db.tableName)}`);
  });

  /** Commits one message per entry (in order) and returns their seqs. */
  async function write(...keys: string[]): Promise<number[]> {
    const ids: string[] = [];
    for (const key of keys) {
      ids.push((await producer.sendMessageInTransaction({ topic: 'claim.test', key, body: {} }, () => TransactionStatus.COMMIT)).messageId);
    }
    const rows = await messageRows(db);
    return ids.map((id) => Number(rows.find((r) => r.id === id)!.seq));
  }

  /** Leases `seqs` to `token`, for `ms` from now by the database's clock (negative: a lease that has run out). */
  async function lease(seqs: number[], token: string, ms: number): Promise<void> {
    const { dialect, t } = app.get(MessageStore);
    const p = new SqlParams(dialect);
    await db.dataSource.query(
      `UPDATE ${t} SET ${q('lease_owner')} = ${p.add('another relay')}, ${q('lease_token')} = ${p.add(token)}, ` +
        `${q('lease_expires_at')} = ${dialect.nowPlusMs(p.add(ms))} WHERE ${q('seq')} IN (${seqs.join(', ')})`,
      p.values,
    );
  }

  const claim = (limit = 100) => db.dataSource.transaction((m) => store.claim(m, 'test relay', `token-${Math.random()}`, limit, 60_000));

  const asClaim = (token: string, rows: Array<[string, number]>): DeliveryClaim => ({
    token,
    messages: rows.map(([key, seq]) => ({ key, seq }) as MessageRow),
  });

  it("stops a key's followers at one another relay holds: never takes the ones after it", async () => {
    const [a, b, c, d] = await write('k', 'k', 'k', 'k');
    // B leased by another relay, A free: the state two claims at the same moment can leave.
    await lease([b], 'theirs', 60_000);
    const { messages } = await claim();
    expect(messages.map((m) => m.seq)).toEqual([a]);
    // Without the barrier, PostgreSQL's claim took A, C and D: C and D would go out before B.
    expect((await messageRows(db)).filter((r) => [c, d].includes(Number(r.seq))).map((r) => r.lease_token)).toEqual([null, null]);
  });

  it('looks past the oldest messages for heads when none among them can be claimed', async () => {
    // Limit 2: the first look covers the 8 oldest committed messages, all of key b, whose head another relay holds.
    const bs = await write(...Array<string>(12).fill('b'));
    const [c] = await write('c');
    await lease([bs[0]], 'theirs', 60_000);
    expect((await claim(2)).messages.map((m) => m.seq)).toEqual([c]);
  });

  it("takes a head's followers past the oldest messages", async () => {
    // Limit 3: the first look covers a1 and b1..b11; a2 and a3 come after them.
    const [a1] = await write('a');
    const bs = await write(...Array<string>(12).fill('b'));
    const [a2, a3] = await write('a', 'a');
    await lease([bs[0]], 'theirs', 60_000);
    expect((await claim(3)).messages.map((m) => m.seq)).toEqual([a1, a2, a3]);
  });

  it('reports a key of which the claim skipped a committed message, whoever holds it', async () => {
    const [a, b, c] = await write('gap', 'gap', 'gap');
    const [x, y] = await write('held-next', 'held-next');
    const [p, r, s] = await write('whole', 'whole', 'whole');
    const [u, v] = await write('stale-next', 'stale-next');
    await lease([a, c, x, p, r, u], 'ours', 60_000);
    await lease([y], 'theirs', 60_000); // the next message of `held-next` is in another relay's batch
    await lease([v], 'theirs', -1_000); // ...of `stale-next`: a lease that ran out holds nothing
    // `gap`: B is committed and not ours (no lease at all); `whole`: S after our P, R is free.
    void b;
    void s;
    const contested = await store.contestedKeys(
      db.dataSource.manager,
      asClaim('ours', [
        ['gap', a],
        ['gap', c],
        ['held-next', x],
        ['whole', p],
        ['whole', r],
        ['stale-next', u],
      ]),
    );
    expect([...contested].sort()).toEqual(['gap', 'held-next']);
  });

  it('reports a gap held by a lease that has run out (a frozen relay), which a lease-only check misses', async () => {
    const [a, b, c] = await write('frozen', 'frozen', 'frozen');
    await lease([a, c], 'ours', 60_000);
    await lease([b], 'theirs', -1_000);
    expect([...(await store.contestedKeys(db.dataSource.manager, asClaim('ours', [['frozen', a], ['frozen', c]])))]).toEqual(['frozen']);
  });

  /** Sets `seqs` to `status` by hand. */
  async function setStatus(seqs: number[], status: string): Promise<void> {
    await db.dataSource.query(`UPDATE ${q(db.tableName)} SET ${q('status')} = '${status}' WHERE ${q('seq')} IN (${seqs.join(', ')})`);
  }

  it('a DEAD message holds its key (onDead hold): no later message starts a claim, and a head before it takes no follower past it', async () => {
    const [h, dead, f1, f2] = await write('held', 'held', 'held', 'held');
    const [o] = await write('other');
    // H committed late (older seq) while D had gone DEAD: H may go, F1 and F2 must wait behind D.
    await setStatus([dead], 'DEAD');
    expect((await claim()).messages.map((m) => m.seq)).toEqual([h, o]);
    await setStatus([h, o], 'DELIVERED');
    // F1 is now the key's first committed message, but D is before it.
    expect((await claim()).messages.map((m) => m.seq)).toEqual([]);
    expect((await messageRows(db)).filter((r) => [f1, f2].includes(Number(r.seq))).map((r) => r.lease_token)).toEqual([null, null]);
  });

  it("with onDead 'skip', a DEAD message holds nothing back", async () => {
    const skipping = new DeliveryStore(app.get(MessageStore), false);
    const [h, dead, f1, f2] = await write('skipped', 'skipped', 'skipped', 'skipped');
    await setStatus([dead], 'DEAD');
    const { messages } = await db.dataSource.transaction((m) => skipping.claim(m, 'test relay', 'token-skip', 100, 60_000));
    expect(messages.map((m) => m.seq)).toEqual([h, f1, f2]);
  });
});
