import type { MessageRow } from '../../store/message-row.js';

/** @internal `rows` without the ones in `some` (which are among them), in order. */
export function withoutSome(rows: readonly MessageRow[], some: readonly MessageRow[]): MessageRow[] {
  if (some.length === rows.length) return [];
  const taken = new Set(some);
  return rows.filter((r) => !taken.has(r));
}

/**
 * @internal `rows` (in order) without the messages that would put one key on two topics in one
 * request: Kafka accepts or refuses each partition's records on their own, so a key's message on a
 * second topic could be written while its earlier one on the first is refused. From such a message
 * on, the key's messages wait for a later request (in order).
 */
export function oneTopicPerKey(rows: readonly MessageRow[]): readonly MessageRow[] {
  if (rows.every((r) => r.topic === rows[0].topic)) return rows;
  let topicOf: Map<string, string> | undefined;
  let deferred: Set<string> | undefined;
  let kept: MessageRow[] | undefined;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    let defer = false;
    if (r.key !== null) {
      topicOf ??= new Map();
      const topic = topicOf.get(r.key);
      if (deferred?.has(r.key)) defer = true;
      else if (topic === undefined) topicOf.set(r.key, r.topic);
      else if (topic !== r.topic) (deferred ??= new Set()).add(r.key), (defer = true);
    }
    if (defer) kept ??= rows.slice(0, i);
    else kept?.push(r);
  }
  return kept ?? rows;
}
