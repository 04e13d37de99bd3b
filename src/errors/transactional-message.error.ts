/**
 * Base class of every error this library throws, so callers can catch them as one family. Each
 * subclass has a stable `code` (`TM_...`) that stays when a message's wording changes.
 */
export class TransactionalMessageError extends Error {
  /** Stable identifier of the errors of this class: `TM_ERROR` here, each subclass its own. */
  static readonly code: string = 'TM_ERROR';
  /** Stable identifier of this error (its class's `code`), to branch on; the message's wording may change. */
  readonly code: string;

  constructor(message: string) {
    super(message);
    this.code = (new.target as { code?: string }).code ?? 'TM_ERROR';
    this.name = new.target.name;
  }
}

/** @internal Renders a user-supplied value for an error message, never throwing and never long. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (value === undefined) return 'undefined';
  try {
    const json = JSON.stringify(value);
    if (json === undefined) return String(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
