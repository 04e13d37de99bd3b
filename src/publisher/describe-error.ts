/**
 * @internal One line for logs and `last_error`: the error's message, the protocol error type
 * (kafkajs' `type`, e.g. MESSAGE_TOO_LARGE) and the causes' messages, without repeats.
 */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let type: string | undefined;
  for (let e = error as { message?: unknown; type?: unknown; cause?: unknown } | undefined; e && !seen.has(e); ) {
    seen.add(e);
    if (typeof e !== 'object') {
      parts.push(String(e));
      break;
    }
    if (typeof e.type === 'string') type ??= e.type;
    const message = typeof e.message === 'string' ? e.message : String(e);
    if (!parts.includes(message)) parts.push(message);
    e = e.cause as typeof e;
  }
  const text = parts.join(' (caused by) ');
  return type ? `${type}: ${text}` : text;
}
