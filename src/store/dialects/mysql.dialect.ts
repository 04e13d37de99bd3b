import { hash32 } from '../sql-params.js';
import { createBucketTables, dropBucketTables, retireRowLeases, unretireRowLeases } from './bucket-tables.js';
import { createDelayedMessages, dropDelayedMessages } from './delayed-messages.js';
import { KEY_LOCK_BUCKETS, type SqlDialect } from './sql-dialect.interface.js';

const q = (identifier: string): string => `\`${identifier}\``;

const DELAYED = { quote: q, time: 'DATETIME(3)', partialIndexes: false, dropIndex: (table: string, index: string) => `ALTER TABLE ${q(table)} DROP INDEX ${q(index)}` };

/** @internal MySQL 8 and MariaDB 10.6+. Times are DATETIME(3) in UTC, independent of the session time zone. */
export const mysqlDialect: SqlDialect = {
  name: 'mysql',
  singleConnection: false,
  notifications: false,
  // InnoDB's default REPEATABLE READ makes the relay's locking reads take gap locks, which
  // deadlock with the INSERTs of business transactions; READ COMMITTED takes none.
  ownIsolation: 'READ COMMITTED',
  inBigints: (column, values, p) => `${column} IN (${p.list(values)})`,
  pairsTable: (pairs, p) => `(${pairs.map(([k, m], i) => (i === 0 ? `SELECT ${p.add(k)} AS k, ${p.add(m)} AS m` : `SELECT ${p.add(k)}, ${p.add(m)}`)).join(' UNION ALL ')})`,
  // mysql2 prepares only through execute(), which TypeORM's query runner does not use.
  queryPrepared: (manager, text, values) => manager.query(text, values),
  insertIgnore: (table, columns, values) => `INSERT IGNORE INTO ${table} (${columns}) VALUES ${values}`,
  // No advisory lock that lasts a transaction: the row of the key's bucket in the lock table.
  keyLock: (lock) => {
    const bucket = ((hash32(lock.key) % KEY_LOCK_BUCKETS) + KEY_LOCK_BUCKETS) % KEY_LOCK_BUCKETS;
    return { before: [[`SELECT bucket FROM ${lock.keyLockTable} WHERE bucket = ? FOR UPDATE`, [bucket]]], from: '' };
  },
  skipLocked: 'FOR UPDATE SKIP LOCKED',
  // InnoDB's purge threads remove delete-marked index entries on their own.
  vacuum: () => null,
  forUpdate: 'FOR UPDATE',
  quote: q,
  param: () => '?',
  now: () => 'UTC_TIMESTAMP(3)',
  ageMs: (column) => `(TIMESTAMPDIFF(MICROSECOND, ${column}, UTC_TIMESTAMP(3)) / 1000)`,
  nowPlusMs: (param) => `(UTC_TIMESTAMP(3) + INTERVAL (${param} * 1000) MICROSECOND)`,
  timeParam: (param) => `CAST(${param} AS DATETIME(3))`,
  selectTime: (column) => `DATE_FORMAT(${column}, '%Y-%m-%d %H:%i:%s.%f')`,
  createTables: (t) => [
    `CREATE TABLE \`${t}\` (
      \`seq\` BIGINT NOT NULL AUTO_INCREMENT,
      \`id\` CHAR(36) CHARACTER SET ascii NOT NULL,
      \`producer_group\` VARCHAR(255) NOT NULL,
      \`topic\` VARCHAR(249) NOT NULL,
      \`message_key\` VARCHAR(255) NULL,
      \`tags\` VARCHAR(1024) NULL,
      \`properties\` MEDIUMTEXT NULL,
      \`body\` LONGBLOB NOT NULL,
      \`content_type\` VARCHAR(64) NOT NULL,
      \`status\` VARCHAR(16) NOT NULL,
      \`created_at\` DATETIME(3) NOT NULL,
      \`transaction_ended_at\` DATETIME(3) NULL,
      \`check_immunity_ms\` INT NOT NULL,
      \`check_count\` INT NOT NULL DEFAULT 0,
      \`next_check_at\` DATETIME(3) NULL,
      \`delivery_attempts\` INT NOT NULL DEFAULT 0,
      \`next_attempt_at\` DATETIME(3) NULL,
      \`last_error\` TEXT NULL,
      \`lease_owner\` VARCHAR(255) NULL,
      \`lease_token\` VARCHAR(64) NULL,
      \`lease_expires_at\` DATETIME(3) NULL,
      \`delivered_at\` DATETIME(3) NULL,
      PRIMARY KEY (\`seq\`),
      UNIQUE KEY \`${t}_id_key\` (\`id\`),
      KEY \`${t}_status_seq_idx\` (\`status\`, \`seq\`),
      KEY \`${t}_key_status_idx\` (\`message_key\`, \`status\`, \`seq\`),
      KEY \`${t}_status_check_idx\` (\`status\`, \`next_check_at\`),
      KEY \`${t}_status_delivered_idx\` (\`status\`, \`delivered_at\`),
      KEY \`${t}_status_ended_idx\` (\`status\`, \`transaction_ended_at\`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE \`${t}_check\` (
      \`seq\` BIGINT NOT NULL AUTO_INCREMENT,
      \`message_id\` CHAR(36) CHARACTER SET ascii NOT NULL,
      \`check_number\` INT NOT NULL,
      \`checked_at\` DATETIME(3) NOT NULL,
      \`result\` VARCHAR(16) NOT NULL,
      \`error\` TEXT NULL,
      \`duration_ms\` INT NOT NULL,
      \`checker\` VARCHAR(255) NOT NULL,
      PRIMARY KEY (\`seq\`),
      KEY \`${t}_check_message_idx\` (\`message_id\`, \`check_number\`)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    // Per-key write order: a message with a key locks its bucket row until its transaction ends,
    // so messages of one key commit in the order they were numbered. The rows exist up front, so
    // the lock is a plain record lock (no gap locks, no insert races).
    `CREATE TABLE \`${t}_key_lock\` (\`bucket\` INT NOT NULL, PRIMARY KEY (\`bucket\`)) ENGINE=InnoDB`,
    `INSERT INTO \`${t}_key_lock\` (\`bucket\`) VALUES ${Array.from({ length: KEY_LOCK_BUCKETS }, (_, i) => `(${i})`).join(', ')}`,
  ],
  dropTables: (t) => [
    `DROP TABLE IF EXISTS \`${t}_key_lock\``,
    `DROP TABLE IF EXISTS \`${t}_check\``,
    `DROP TABLE IF EXISTS \`${t}\``,
  ],
  // `${t}_key_status_idx` (message_key, status, seq) already finds a key's DEAD messages.
  createDeadKeyIndex: () => [],
  dropDeadKeyIndex: () => [],
  // `${t}_status_seq_idx` (status, seq) already serves operators' lists and counts.
  createOperatorIndex: () => [],
  createBuckets: (t) =>
    createBucketTables(t, {
      quote: q,
      smallint: 'SMALLINT',
      text: 'VARCHAR(255) CHARACTER SET ascii',
      time: 'DATETIME(3)',
      tableSuffix: ' ENGINE=InnoDB',
    }),
  dropBuckets: (t) => dropBucketTables(t, { quote: q }),
  retireRowLeases: (t) => retireRowLeases(t, { quote: q, partialIndexes: false, forever: "'9999-12-31 23:59:59.999'" }),
  unretireRowLeases: (t) => unretireRowLeases(t, { quote: q, partialIndexes: false }, (table, index) => `ALTER TABLE ${q(table)} DROP INDEX ${q(index)}`),
  createDelayedMessages: (t) => createDelayedMessages(t, DELAYED),
  dropDelayedMessages: (t) => dropDelayedMessages(t, DELAYED),
  upsert: (table, columns, values, _key, update) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${values}) ON DUPLICATE KEY UPDATE ${update.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  createInboxTable: (t) => [
    `CREATE TABLE \`${t}\` (\`consumer\` VARCHAR(255) NOT NULL, \`message_id\` VARCHAR(64) CHARACTER SET ascii NOT NULL, ` +
      `\`received_at\` DATETIME(3) NOT NULL, PRIMARY KEY (\`consumer\`, \`message_id\`), KEY \`${t}_received_idx\` (\`received_at\`)) ` +
      `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  ],
  dropOperatorIndex: () => [],
};
