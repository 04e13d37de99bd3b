import type { TestDatabase } from '../../support/databases.js';

/** What the oracle found in one run. Every count but `duplicatedDeliveries` must be 0. */
export interface OracleReport {
  /** Orders started (fault_intent rows). */
  written: number;
  /** Orders whose transaction committed (fault_order rows), and of them those to deliver (paid). */
  committedTransactions: number;
  toDeliver: number;
  /** Ended by a check (intent unknown-*), to deliver and to drop. */
  checkedToDeliver: number;
  consumedMessages: number;
  deliveries: number;
  /** Records the consumer received more than once (at-least-once: allowed, counted). */
  duplicatedDeliveries: number;
  /**
   * Copies of a message in the topic beyond the first, as the consumer (kafkajs, read_committed)
   * read them: distinct partition/offset pairs per message, less one. A record read twice (the
   * consumer restarted before committing its offset) is one copy. Reported: at least once, copies
   * are allowed; with kafka.exactlyOnce the tests count the topic's committed records themselves
   * (committedCopies), since kafkajs' read_committed filter returns some aborted records.
   */
  duplicateRecords: number;
  /** Effects the inbox let through more than once: must be 0. */
  duplicatedEffects: number;
  /** To deliver but never consumed. */
  lost: number;
  /** Consumed but rolled back, never committed, or never written. */
  unexpected: number;
  /** Per key, effects of orders committed by their producer not in written order. */
  orderViolations: number;
  /** Rows whose final status contradicts the business outcome (a paid order not DELIVERED, a cancelled one not ROLLED_BACK). */
  wrongStatus: number;
  checkCalls: number;
  /** Handler calls for a message that was no longer HALF, or was ended by its producer. */
  checksOfDecided: number;
  /**
   * Handler calls that found their message decided because the calling process had been frozen
   * (SIGSTOP) past its check lease after the library confirmed it: reported, not a violation (a
   * frozen process cannot be stopped from finishing a call it had started; its answer is fenced).
   */
  staleChecksAfterPause: number;
  /**
   * Handler calls that began before the message was decided (by another instance whose lease had
   * taken over) and saw it decided by the time their own query ran: the check was started on an
   * undecided message; reported, not a violation.
   */
  checksRacedInHandler: number;
  /** Check numbers recorded twice, or not 1..n, per message. */
  checkCountErrors: number;
  /** Examples of each violation, for the failure message. */
  examples: string[];
}

interface Row {
  [column: string]: any;
}

/**
 * The oracle: reads what the workers recorded (intents, business rows, deliveries, effects,
 * handler calls) and what the library stored (statuses, check history), and counts violations
 * of the guarantees. Business truth comes from the business rows, never from the library.
 */
/** A SIGSTOP of a worker process, from the chaos loop (ms since the epoch). */
export interface Pause {
  pid: number;
  from: number;
  to: number;
}

export async function runOracle(
  db: TestDatabase,
  options: { exhaustedStatus?: string; pauses?: Pause[]; leaseMs?: number } = {},
): Promise<OracleReport> {
  const q = (sql: string): Promise<Row[]> => db.dataSource.query(sql);
  const t = db.tableName;
  const [intents, orders, deliveries, effects, calls, messages, history] = await Promise.all([
    q(`SELECT no, msg_key, key_seq, intent FROM fault_intent`),
    q(`SELECT no, message_id, state FROM fault_order`),
    q(`SELECT message_id, partition_no, offset_no FROM fault_delivery`),
    q(`SELECT seq, message_id, no, msg_key, key_seq FROM fault_effect ORDER BY seq`),
    q(`SELECT message_id, check_count, status_at_call, pid, called_ms FROM fault_check_call`),
    q(
      db.kind === 'mariadb'
        ? `SELECT id, status, UNIX_TIMESTAMP(transaction_ended_at) * 1000 AS ended_ms FROM ${t}`
        : db.kind === 'postgres'
          ? `SELECT id, status, EXTRACT(EPOCH FROM transaction_ended_at) * 1000 AS ended_ms FROM ${t}`
          : `SELECT id, status, NULL AS ended_ms FROM ${t}`,
    ),
    q(
      db.kind === 'mariadb'
        ? `SELECT message_id, check_number, checker, result, UNIX_TIMESTAMP(checked_at) * 1000 AS checked_ms FROM ${t}_check`
        : db.kind === 'postgres'
          ? `SELECT message_id, check_number, checker, result, EXTRACT(EPOCH FROM checked_at) * 1000 AS checked_ms FROM ${t}_check`
          : `SELECT message_id, check_number, checker, result, NULL AS checked_ms FROM ${t}_check`,
    ),
  ]);
  const examples: string[] = [];
  const example = (text: string) => {
    if (examples.length < 20) examples.push(text);
  };
  const intentOf = new Map(intents.map((i) => [i.no, i]));
  const statusOf = new Map(messages.map((m) => [String(m.id), String(m.status)]));
  const endedAt = new Map(messages.map((m) => [String(m.id), m.ended_ms === null || m.ended_ms === undefined ? undefined : Number(m.ended_ms)]));
  const toDeliver = new Set<string>();
  const producerDecided = new Set<string>();
  let wrongStatus = 0;
  let checkedToDeliver = 0;
  for (const order of orders) {
    const id = String(order.message_id);
    const intent = intentOf.get(order.no)?.intent as string | undefined;
    if (intent === 'commit' || intent === 'rollback') producerDecided.add(id);
    const status = statusOf.get(id);
    if (order.state === 'paid') {
      toDeliver.add(id);
      if (intent?.startsWith('unknown')) checkedToDeliver++;
      // Not stored: deleted by the relay's mark (relay.retentionMs 0, the default), i.e. delivered;
      // whether it really reached the consumer is counted below (lost).
      if (status !== 'DELIVERED' && status !== undefined) {
        wrongStatus++;
        example(`order ${order.no} is paid but message ${id} is ${status}`);
      }
    } else if (status !== 'ROLLED_BACK' && status !== options.exhaustedStatus && status !== undefined) {
      // Not stored: pruned after its rollback (relay.retentionMs 0); consumed anyway would be counted below (unexpected).
      wrongStatus++;
      example(`order ${order.no} is cancelled but message ${id} is ${status}`);
    }
  }
  const effectCount = new Map<string, number>();
  for (const e of effects) effectCount.set(String(e.message_id), (effectCount.get(String(e.message_id)) ?? 0) + 1);
  const deliveryCount = new Map<string, number>();
  for (const d of deliveries) deliveryCount.set(String(d.message_id), (deliveryCount.get(String(d.message_id)) ?? 0) + 1);

  let lost = 0;
  for (const id of toDeliver) {
    if (!effectCount.has(id)) {
      lost++;
      example(`lost: message ${id} (${statusOf.get(id)}) was committed and never consumed`);
    }
  }
  let unexpected = 0;
  let duplicatedEffects = 0;
  for (const [id, count] of effectCount) {
    if (!toDeliver.has(id)) {
      unexpected++;
      example(`unexpected: message ${id} (${statusOf.get(id) ?? 'not stored'}) was consumed`);
    }
    if (count > 1) {
      duplicatedEffects += count - 1;
      example(`duplicated effect: message ${id} ran ${count} times`);
    }
  }
  let duplicatedDeliveries = 0;
  for (const count of deliveryCount.values()) duplicatedDeliveries += Math.max(0, count - 1);
  const copies = new Map<string, Set<string>>();
  for (const d of deliveries) {
    const id = String(d.message_id);
    if (!copies.has(id)) copies.set(id, new Set());
    copies.get(id)!.add(`${d.partition_no}@${d.offset_no}`);
  }
  let duplicateRecords = 0;
  for (const at of copies.values()) duplicateRecords += Math.max(0, at.size - 1);

  // Order: per key, the first effects of orders their producer committed follow the write order.
  let orderViolations = 0;
  const lastSeqOfKey = new Map<string, number>();
  // Where each message first sat in Kafka: tells a reordering in the topic from one in the consumer.
  const firstOffset = new Map<string, string>();
  for (const d of deliveries) {
    const id = String(d.message_id);
    const at = `p${d.partition_no}@${d.offset_no}`;
    const known = firstOffset.get(id);
    if (!known || Number(d.offset_no) < Number(known.split('@')[1])) firstOffset.set(id, at);
  }
  const noToId = new Map(effects.map((e) => [String(e.no), String(e.message_id)]));
  for (const e of effects) {
    if (intentOf.get(e.no)?.intent !== 'commit') continue; // committed later by a check: ordered by that commit
    const last = lastSeqOfKey.get(e.msg_key) ?? 0;
    if (Number(e.key_seq) < last) {
      orderViolations++;
      const other = noToId.get(`${e.msg_key}#${last}`);
      example(
        `order: key ${e.msg_key} consumed #${e.key_seq} (${firstOffset.get(String(e.message_id))}) after #${last} (${other ? firstOffset.get(other) : '?'})`,
      );
    }
    lastSeqOfKey.set(e.msg_key, Math.max(last, Number(e.key_seq)));
  }

  // For a failure message: every handler call and recorded check of one message, with the
  // decision time and the pauses of the processes involved (ms relative to the decision).
  const postMortem = (id: string): string => {
    const ended = endedAt.get(id);
    const rel = (ms: unknown) => (ended === undefined ? `@${Number(ms)}` : `${Math.round(Number(ms) - ended)}ms`);
    const ofId = calls.filter((c) => String(c.message_id) === id);
    const pids = new Set(ofId.map((c) => Number(c.pid)));
    return [
      `intent ${producerDecided.has(id) ? 'decided by its producer' : 'left to a check'}, decided at ${ended ?? '?'}`,
      `calls [${ofId.map((c) => `pid ${c.pid} #${c.check_count} saw ${c.status_at_call} at ${rel(c.called_ms)}`).join('; ')}]`,
      `history [${history
        .filter((h) => String(h.message_id) === id)
        .map((h) => `#${h.check_number} ${h.result} by ${h.checker} at ${rel(h.checked_ms)}`)
        .join('; ')}]`,
      `pauses [${(options.pauses ?? [])
        .filter((p) => pids.has(p.pid))
        .map((p) => `pid ${p.pid} ${rel(p.from)}..${rel(p.to)}`)
        .join('; ')}]`,
    ].join(', ');
  };
  let checksOfDecided = 0;
  let staleChecksAfterPause = 0;
  let checksRacedInHandler = 0;
  const window = 2 * (options.leaseMs ?? 0);
  const frozenBefore = (pid: number, at: number) =>
    (options.pauses ?? []).some((p) => p.pid === pid && p.from <= at && p.to >= at - window);
  for (const call of calls) {
    const id = String(call.message_id);
    if (call.status_at_call !== 'HALF' && !producerDecided.has(id) && frozenBefore(Number(call.pid), Number(call.called_ms))) {
      staleChecksAfterPause++;
      continue;
    }
    // Entered before the decision was written (the database's time of the deciding transaction,
    // which starts just before it commits: 50 ms of slack), and saw it decided by its own query.
    const ended = endedAt.get(id);
    if (call.status_at_call !== 'HALF' && !producerDecided.has(id) && ended !== undefined && Number(call.called_ms) <= ended + 50) {
      checksRacedInHandler++;
      continue;
    }
    if (call.status_at_call !== 'HALF' || producerDecided.has(id)) {
      checksOfDecided++;
      example(`check of a decided message ${id} (status ${call.status_at_call}, check #${call.check_count}): ${postMortem(id)}`);
    }
  }
  let checkCountErrors = 0;
  const numbers = new Map<string, number[]>();
  for (const h of history) numbers.set(String(h.message_id), [...(numbers.get(String(h.message_id)) ?? []), Number(h.check_number)]);
  for (const [id, list] of numbers) {
    list.sort((a, b) => a - b);
    if (!list.every((n, i) => n === i + 1)) {
      checkCountErrors++;
      example(`check numbers of ${id}: ${list.join(',')}`);
    }
    if (producerDecided.has(id)) {
      checksOfDecided++;
      example(`check history for ${id}, which its producer ended`);
    }
  }

  return {
    written: intents.length,
    committedTransactions: orders.length,
    toDeliver: toDeliver.size,
    checkedToDeliver,
    consumedMessages: effectCount.size,
    deliveries: deliveries.length,
    duplicatedDeliveries,
    duplicateRecords,
    duplicatedEffects,
    lost,
    unexpected,
    orderViolations,
    wrongStatus,
    checkCalls: calls.length,
    checksOfDecided,
    staleChecksAfterPause,
    checksRacedInHandler,
    checkCountErrors,
    examples,
  };
}

/** The counts that must be 0. */
export function violations(report: OracleReport): Record<string, number> {
  const { lost, unexpected, duplicatedEffects, orderViolations, wrongStatus, checksOfDecided, checkCountErrors } = report;
  return { lost, unexpected, duplicatedEffects, orderViolations, wrongStatus, checksOfDecided, checkCountErrors };
}

/** Whether everything to deliver was consumed and nothing is left HALF, COMMITTED or leased (the end of a run). */
export async function settled(db: TestDatabase): Promise<boolean> {
  const [open] = await db.dataSource.query(`SELECT COUNT(*) AS n FROM ${db.tableName} WHERE status IN ('HALF', 'COMMITTED')`);
  if (Number(open.n) > 0) return false;
  const [missing] = await db.dataSource.query(
    `SELECT COUNT(*) AS n FROM fault_order o WHERE o.state = 'paid' AND NOT EXISTS (SELECT 1 FROM fault_effect e WHERE e.message_id = o.message_id)`,
  );
  return Number(missing.n) === 0;
}
