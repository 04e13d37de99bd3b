import type { SqlDialect } from './sql-dialect.interface.js';

/** @internal PostgreSQL 12+. */
export const postgresDialect: SqlDialect = {
  name: 'postgres',
  singleConnection: false,
  quote: (identifier) => `"${identifier}"`,
  param: (index) => `$${index}`,
  // statement_timestamp(), not now(): now() is frozen when the transaction starts, and a message
  // stored at the end of a long transaction must not look older than it is. Within one statement
  // it is constant, so created_at + immunity = next_check_at exactly.
  now: () => 'statement_timestamp()',
  nowPlusMs: (param) => `(statement_timestamp() + ${param}::int * interval '1 millisecond')`,
  selectTime: (column) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')`,
  createMessageTable: (t) => [
    `CREATE TABLE "${t}" (
      "seq" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      "id" UUID NOT NULL,
      "producer_group" VARCHAR(255) NOT NULL,
      "topic" VARCHAR(249) NOT NULL,
      "message_key" VARCHAR(255),
      "tags" VARCHAR(1024),
      "properties" TEXT,
      "body" BYTEA NOT NULL,
      "content_type" VARCHAR(64) NOT NULL,
      "status" VARCHAR(16) NOT NULL,
      "created_at" TIMESTAMPTZ(3) NOT NULL,
      "transaction_ended_at" TIMESTAMPTZ(3),
      "check_immunity_ms" INTEGER NOT NULL,
      "check_count" INTEGER NOT NULL DEFAULT 0,
      "next_check_at" TIMESTAMPTZ(3),
      "delivery_attempts" INTEGER NOT NULL DEFAULT 0,
      "next_attempt_at" TIMESTAMPTZ(3),
      "last_error" TEXT,
      "lease_owner" VARCHAR(255),
      "lease_token" VARCHAR(64),
      "lease_expires_at" TIMESTAMPTZ(3),
      "delivered_at" TIMESTAMPTZ(3),
      CONSTRAINT "${t}_id_key" UNIQUE ("id")
    )`,
    // Partial indexes: the relay's claim queries read only live rows, so their cost does not
    // grow with the delivered history.
    `CREATE INDEX "${t}_half_due_idx" ON "${t}" ("next_check_at") WHERE "status" = 'HALF'`,
    `CREATE INDEX "${t}_committed_due_idx" ON "${t}" ("next_attempt_at", "seq") WHERE "status" = 'COMMITTED'`,
    `CREATE INDEX "${t}_open_key_idx" ON "${t}" ("message_key", "seq") WHERE "status" IN ('HALF', 'COMMITTED')`,
    `CREATE INDEX "${t}_delivered_idx" ON "${t}" ("delivered_at") WHERE "status" = 'DELIVERED'`,
    `CREATE INDEX "${t}_rolled_back_idx" ON "${t}" ("transaction_ended_at") WHERE "status" = 'ROLLED_BACK'`,
  ],
  dropMessageTable: (t) => [`DROP TABLE IF EXISTS "${t}"`],
};
