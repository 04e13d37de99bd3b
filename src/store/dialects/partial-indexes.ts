/**
 * @internal The indexes of the message table on databases with partial indexes (PostgreSQL,
 * SQLite). The relay's claim queries read only live rows (HALF, COMMITTED), so their cost does
 * not grow with the delivered history; pruning reads only finished rows.
 */
export function partialIndexes(t: string): string[] {
  return [
    // Delivery claims walk committed rows in write order...
    `CREATE INDEX "${t}_committed_seq_idx" ON "${t}" ("seq") WHERE "status" = 'COMMITTED'`,
    // ...and ask whether an earlier committed message of the same key is still waiting.
    `CREATE INDEX "${t}_committed_key_idx" ON "${t}" ("message_key", "seq") WHERE "status" = 'COMMITTED'`,
    `CREATE INDEX "${t}_half_due_idx" ON "${t}" ("next_check_at") WHERE "status" = 'HALF'`,
    `CREATE INDEX "${t}_delivered_idx" ON "${t}" ("delivered_at") WHERE "status" = 'DELIVERED'`,
    `CREATE INDEX "${t}_rolled_back_idx" ON "${t}" ("transaction_ended_at") WHERE "status" = 'ROLLED_BACK'`,
  ];
}

/**
 * @internal Operators list and count the messages that wait for someone (HALF, DEAD, parked,
 * discarded) by status, in write order; COMMITTED has its own index. Delivered and rolled-back
 * rows are not in it, so lists and counts never walk the history.
 */
export function operatorIndex(t: string): string {
  return `CREATE INDEX "${t}_operator_idx" ON "${t}" ("status", "seq") WHERE "status" IN ('HALF', 'DEAD', 'CHECK_EXHAUSTED', 'DISCARDED')`;
}

/**
 * @internal A DEAD message holds back the later messages of its key (`relay.onDead: 'hold'`): the
 * claim asks, per key, whether an earlier message is DEAD. DEAD rows are few.
 */
export function deadKeyIndex(t: string): string {
  return `CREATE INDEX "${t}_dead_key_idx" ON "${t}" ("message_key", "seq") WHERE "status" = 'DEAD'`;
}
