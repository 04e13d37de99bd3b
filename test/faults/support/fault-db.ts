import { transactionalMessageInboxMigrations } from '../../../src/index.js';
import { createTestDatabase, type TestDatabase } from '../../support/databases.js';

export type FaultDatabaseKind = 'postgres' | 'mariadb';

/**
 * A fresh database for one fault test: the library's tables and inbox, and the fault_* tables in
 * which the workers record what they did (what the oracle reads). SQLite is not here: it is one
 * process's database, and these tests are about processes.
 */
export async function createFaultDatabase(kind: FaultDatabaseKind, serverUrl?: string): Promise<TestDatabase & { url: string }> {
  const db = await createTestDatabase(kind, { serverUrl });
  const runner = db.dataSource.createQueryRunner();
  try {
    for (const Migration of transactionalMessageInboxMigrations()) await new Migration().up(runner);
  } finally {
    await runner.release();
  }
  const id = kind === 'postgres' ? 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' : 'BIGINT AUTO_INCREMENT PRIMARY KEY';
  for (const sql of [
    // One row per order the producer started, before its transaction: the intended outcome.
    `CREATE TABLE fault_intent (no VARCHAR(64) PRIMARY KEY, msg_key VARCHAR(64) NOT NULL, key_seq INT NOT NULL, intent VARCHAR(20) NOT NULL, writer VARCHAR(64) NOT NULL)`,
    // The business row, written in the order's transaction: exists if and only if it committed.
    `CREATE TABLE fault_order (no VARCHAR(64) PRIMARY KEY, message_id VARCHAR(36) NOT NULL, state VARCHAR(16) NOT NULL)`,
    // Every publish the relays attempted, and every one Kafka acknowledged.
    `CREATE TABLE fault_publish (seq ${id}, message_id VARCHAR(36) NOT NULL, phase VARCHAR(8) NOT NULL, pid INT NOT NULL, worker VARCHAR(64) NOT NULL)`,
    // Every record the consumer received (duplicates included), and every effect the inbox let through.
    `CREATE TABLE fault_delivery (seq ${id}, message_id VARCHAR(36) NOT NULL, no VARCHAR(64) NOT NULL, pid INT NOT NULL, partition_no INT NOT NULL, offset_no BIGINT NOT NULL)`,
    `CREATE TABLE fault_effect (seq ${id}, message_id VARCHAR(36) NOT NULL, no VARCHAR(64) NOT NULL, msg_key VARCHAR(64) NOT NULL, key_seq INT NOT NULL)`,
    // Every call of the check handler, with the message's status when it was called.
    `CREATE TABLE fault_check_call (seq ${id}, message_id VARCHAR(36) NOT NULL, check_count INT NOT NULL, status_at_call VARCHAR(20) NOT NULL, answer VARCHAR(16) NOT NULL, pid INT NOT NULL, called_ms BIGINT NOT NULL)`,
    // The lookups the workers and the oracle make while the run goes on.
    `CREATE INDEX fault_intent_key ON fault_intent (msg_key, key_seq)`,
    `CREATE INDEX fault_order_message ON fault_order (message_id)`,
    `CREATE INDEX fault_effect_message ON fault_effect (message_id)`,
    `CREATE INDEX fault_delivery_message ON fault_delivery (message_id)`,
    `CREATE INDEX fault_publish_pid ON fault_publish (pid)`,
  ]) {
    await db.dataSource.query(sql);
  }
  const url = (db.options as { url: string }).url;
  return { ...db, url };
}
