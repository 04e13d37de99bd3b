/**
 * @internal One line for logs and `last_error`: the error's message, the protocol error type
 * (kafkajs' `type`, @platformatic/kafka's `apiId`, e.g. MESSAGE_TOO_LARGE) and the causes'
 * messages, without repeats. An aggregate error (`errors`: the attempts of a retried request, the
 * destinations of a send) is followed into its last error when it has no cause.
 */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let type: string | undefined;
  for (let e = error as { message?: unknown; type?: unknown; apiId?: unknown; cause?: unknown; errors?: unknown } | undefined; e && !seen.has(e); ) {
    seen.add(e);
    if (typeof e !== 'object') {
      parts.push(String(e));
      break;
    }
    if (typeof e.type === 'string') type ??= e.type;
    if (typeof e.apiId === 'string') type ??= e.apiId;
    const message = typeof e.message === 'string' ? e.message : String(e);
    if (!parts.includes(message)) parts.push(message);
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors.filter(Boolean).at(-1) : undefined)) as typeof e;
  }
  const text = parts.join(' (caused by) ');
  return type ? `${type}: ${text}` : text;
}
