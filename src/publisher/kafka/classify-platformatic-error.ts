import type { PublishFailure } from '../message-publisher.interface.js';
import { classifyKafkaErrorName, TLS_CODE } from './classify-kafka-error.js';

/** @platformatic/kafka's own error codes that mean the broker cannot be reached or did not answer in time. */
const TRANSPORT_CODES = new Set(['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT', 'PLT_KFK_UNEXPECTED_CORRELATION_ID']);

/** @platformatic/kafka's own error codes about the client's configuration (SASL, the broker's protocol versions). */
const CONFIG_CODES = new Set(['PLT_KFK_AUTHENTICATION', 'PLT_KFK_UNSUPPORTED_API', 'PLT_KFK_UNSUPPORTED', 'PLT_KFK_UNSUPPORTED_COMPRESSION']);

/** Node's socket errors: the broker is not there (or the network between). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

interface PlatformaticErrorLike {
  code?: unknown;
  apiId?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** Which verdict wins when several errors of one failure disagree: the one that blames the messages least. */
const PRECEDENCE: Record<string, number> = { config: 0, transport: 1, 'message-retriable': 2, message: 3, unknown: 4 };
const rank = (f: PublishFailure) => PRECEDENCE[f.kind === 'message' && f.retriable ? 'message-retriable' : f.kind];

/**
 * @internal Classifies an error of `@platformatic/kafka` by what it means. Its errors carry the
 * Kafka protocol error's name as `apiId` and a `PLT_KFK_*` code, and nest: a `cause`, and
 * `errors` in a `MultipleErrors` (the attempts of a retried request, the last one telling how
 * it ended; or the destinations of one send, where the verdict blaming the messages least wins:
 * a batch that met an outage on one broker is retried whole, nothing counted against it).
 */
export function classifyPlatformaticKafkaError(error: unknown): PublishFailure {
  return verdict(error, new Set()) ?? { kind: 'unknown' };
}

function verdict(error: unknown, seen: Set<unknown>): PublishFailure | undefined {
  if (!error || typeof error !== 'object' || seen.has(error)) return undefined;
  seen.add(error);
  const e = error as PlatformaticErrorLike;
  // A TLS failure below a network error: the client's configuration, not an outage.
  if (hasTlsCause(e, new Set())) return { kind: 'config' };
  if (typeof e.apiId === 'string') {
    const byName = classifyKafkaErrorName(e.apiId);
    if (byName) return byName;
  }
  if (typeof e.code === 'string') {
    if (CONFIG_CODES.has(e.code)) return { kind: 'config' };
    // The topic does not exist and the broker does not create topics: fixable without touching
    // the message (create it), as UNKNOWN_TOPIC_OR_PARTITION.
    if (e.code === 'PLT_KFK_USER' && typeof e.message === 'string' && e.message.startsWith('Unknown topic ')) return { kind: 'message', retriable: true };
    if (SOCKET_CODES.has(e.code)) return { kind: 'transport' };
  }
  if (Array.isArray(e.errors)) {
    const parts = e.errors.filter((x) => x);
    const attempts = typeof e.message === 'string' && / failed \d+ times\.$/.test(e.message);
    const verdicts = (attempts ? parts.slice(-1) : parts).map((part) => verdict(part, seen)).filter((v): v is PublishFailure => v !== undefined);
    if (verdicts.length > 0) return verdicts.reduce((best, v) => (rank(v) < rank(best) ? v : best));
  }
  const byCause = verdict(e.cause, seen);
  if (byCause) return byCause;
  if (typeof e.code === 'string' && TRANSPORT_CODES.has(e.code)) return { kind: 'transport' };
  return undefined;
}

function hasTlsCause(e: PlatformaticErrorLike | undefined, seen: Set<unknown>): boolean {
  for (; e && typeof e === 'object' && !seen.has(e); e = e.cause as PlatformaticErrorLike) {
    seen.add(e);
    if (typeof e.code === 'string' && TLS_CODE.test(e.code)) return true;
  }
  return false;
}
