// The oracle must be able to fail: a hand-made history with one of each violation, and the
// counts it must report. (The fault tests are only as good as this.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createFaultDatabase } from './support/fault-db.js';
import { runOracle, violations } from './support/oracle.js';
import type { TestDatabase } from '../support/databases.js';

describe('the fault oracle', () => {
  let db: TestDatabase & { url: string };
  let fake: TestDatabase;

  beforeAll(async () => {
    db = await createFaultDatabase('postgres');
    // A stand-in for the message table and its check history, with only what the oracle reads.
    await db.dataSource.query(`CREATE TABLE fake_msg (id VARCHAR(36) PRIMARY KEY, status VARCHAR(20) NOT NULL, transaction_ended_at TIMESTAMPTZ(3))`);
    await db.dataSource.query(`CREATE TABLE fake_msg_check (message_id VARCHAR(36) NOT NULL, check_number INT NOT NULL, checked_at TIMESTAMPTZ(3), result VARCHAR(16), checker VARCHAR(255))`);
    fake = { ...db, tableName: 'fake_msg' };
    const rows = (table: string, values: unknown[][]) =>
      db.dataSource.query(
        `INSERT INTO ${table} VALUES ${values.map((v, i) => `(${v.map((_, j) => `$${i * v.length + j + 1}`).join(', ')})`).join(', ')}`,
        values.flat(),
      );
    // no, key, key_seq, intent, writer
    await rows('fault_intent', [
      ['k#1', 'k', 1, 'commit', 'w'], // m1: fine
      ['k#2', 'k', 2, 'commit', 'w'], // m2: lost
      ['k#3', 'k', 3, 'rollback', 'w'], // m3: rolled back, consumed
      ['k#4', 'k', 4, 'commit', 'w'], // m4: effect twice
      ['j#1', 'j', 1, 'commit', 'w'], // m5 and m6: consumed in the wrong order
      ['j#2', 'j', 2, 'commit', 'w'],
      ['k#5', 'k', 5, 'unknown-commit', 'w'], // m7: check number recorded twice
      ['k#6', 'k', 6, 'commit', 'w'], // m8: paid but never delivered (status COMMITTED)
    ]);
    await rows('fault_order', [
      ['k#1', 'm1', 'paid'],
      ['k#2', 'm2', 'paid'],
      ['k#3', 'm3', 'cancelled'],
      ['k#4', 'm4', 'paid'],
      ['j#1', 'm5', 'paid'],
      ['j#2', 'm6', 'paid'],
      ['k#5', 'm7', 'paid'],
      ['k#6', 'm8', 'paid'],
    ]);
    await rows('fake_msg (id, status)', [
      ['m1', 'DELIVERED'],
      ['m2', 'DELIVERED'],
      ['m3', 'ROLLED_BACK'],
      ['m4', 'DELIVERED'],
      ['m5', 'DELIVERED'],
      ['m6', 'DELIVERED'],
      ['m7', 'DELIVERED'],
      ['m8', 'COMMITTED'],
    ]);
    // m7 was decided at t = 4 s (epoch ms 4000); its late handler call below came at 5 s.
    await db.dataSource.query(`UPDATE fake_msg SET transaction_ended_at = to_timestamp(4) WHERE id = 'm7'`);
    // message_id, no, key, key_seq (in consumption order)
    const effects = [
      ['m1', 'k#1', 'k', 1],
      ['m3', 'k#3', 'k', 3],
      ['m4', 'k#4', 'k', 4],
      ['m4', 'k#4', 'k', 4],
      ['m6', 'j#2', 'j', 2],
      ['m5', 'j#1', 'j', 1],
      ['m7', 'k#5', 'k', 5],
      ['m9', 'x#1', 'x', 1], // never written
    ];
    for (const [id, no, key, seq] of effects) {
      await db.dataSource.query(`INSERT INTO fault_effect (message_id, no, msg_key, key_seq) VALUES ($1, $2, $3, $4)`, [id, no, key, seq]);
      await db.dataSource.query(`INSERT INTO fault_delivery (message_id, no, pid, partition_no, offset_no) VALUES ($1, $2, 1, 0, 0)`, [id, no]);
    }
    await db.dataSource.query(`INSERT INTO fault_delivery (message_id, no, pid, partition_no, offset_no) VALUES ('m1', 'k#1', 1, 0, 9)`);
    await rows('fake_msg_check', [
      ['m7', 1],
      ['m7', 1],
    ]);
    // message_id, check_count, status_at_call, answer, pid, called_ms
    await db.dataSource.query(
      `INSERT INTO fault_check_call (message_id, check_count, status_at_call, answer, pid, called_ms) VALUES ('m1', 1, 'HALF', 'COMMIT', 1, 0), ('m7', 1, 'DELIVERED', 'COMMIT', 2, 5000)`,
    );
  });

  afterAll(() => db?.drop());

  it('counts each kind of violation', async () => {
    const report = await runOracle(fake);
    expect(violations(report)).toEqual({
      lost: 2, // m2, and m8 (never consumed)
      unexpected: 2, // m3 (rolled back), m9 (never written)
      duplicatedEffects: 1, // m4
      orderViolations: 1, // j#1 after j#2
      wrongStatus: 1, // m8 paid but COMMITTED
      checksOfDecided: 2, // m1 was ended by its producer; m7 was DELIVERED when its handler was called
      checkCountErrors: 1, // m7's check #1 twice
    });
    expect(report.duplicatedDeliveries).toBe(2); // m4 twice, m1 twice
    expect(report.toDeliver).toBe(7);
    expect(report.examples.length).toBeGreaterThan(0);
    // A check of a decided message comes with what a post-mortem needs (times relative to the decision at 4 s).
    const m7 = report.examples.find((e) => e.startsWith('check of a decided message m7'));
    expect(m7).toContain('left to a check');
    expect(m7).toContain('calls [pid 2 #1 saw DELIVERED at 1000ms]');
  });

  it('excuses a handler call on a decided message only when its process had been frozen just before', async () => {
    const report = await runOracle(fake, { pauses: [{ pid: 2, from: 3000, to: 4500 }], leaseMs: 2000 });
    expect(report.staleChecksAfterPause).toBe(1);
    expect(violations(report).checksOfDecided).toBe(1); // m1's remains
    const unrelated = await runOracle(fake, { pauses: [{ pid: 3, from: 3000, to: 4500 }], leaseMs: 2000 });
    expect(unrelated.staleChecksAfterPause).toBe(0);
  });

  it('tells a call that began before the decision (and raced with it) from one that began after', async () => {
    expect((await runOracle(fake)).checksRacedInHandler).toBe(0); // called at 5 s, decided at 4 s: a violation
    await db.dataSource.query(`UPDATE fake_msg SET transaction_ended_at = to_timestamp(6) WHERE id = 'm7'`);
    const raced = await runOracle(fake);
    expect(raced.checksRacedInHandler).toBe(1); // called at 5 s, decided at 6 s
    expect(violations(raced).checksOfDecided).toBe(1); // m1's remains
  });
});
