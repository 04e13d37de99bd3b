import { TransactionalMessageError } from '../errors/transactional-message.error.js';

/** @internal A parsed RocketMQ tag expression: `*` (every message) or `tagA || tagB`. */
export interface TagExpression {
  readonly source: string;
  matches(tags: readonly string[]): boolean;
}

const TAG = /^[^\s|,]{1,128}$/;

/**
 * @internal Parses a RocketMQ-style subscription expression. `*` (or an empty expression) matches
 * every message, tagged or not; `paid || refunded` matches a message carrying any of those tags.
 */
export function parseTagExpression(source: string, where: string): TagExpression {
  if (typeof source !== 'string') {
    throw new TransactionalMessageError(`${where}: the tag expression must be a string like 'paid || refunded', got ${String(source)}.`);
  }
  const trimmed = source.trim();
  if (trimmed === '' || trimmed === '*') return { source, matches: () => true };
  const wanted = trimmed.split('||').map((tag) => tag.trim());
  for (const tag of wanted) {
    if (!TAG.test(tag)) {
      throw new TransactionalMessageError(
        `${where}: invalid tag expression ${JSON.stringify(source)}: expected '*' or tags separated by '||' ` +
          `(each 1-128 characters without spaces, '|' or ','), e.g. 'paid || refunded'.`,
      );
    }
  }
  const set = new Set(wanted);
  return { source, matches: (tags) => tags.some((tag) => set.has(tag)) };
}
