import type { Context, Span } from '@opentelemetry/api';
import type { OutgoingMessage } from '../publisher/message-publisher.interface.js';

/** The headers that carry the producing request's trace context (W3C), set by the library. */
export const TRACEPARENT_HEADER = 'tm-traceparent';
export const TRACESTATE_HEADER = 'tm-tracestate';

const TRACER = 'nestjs-transactional-message';

let api: typeof import('@opentelemetry/api') | undefined;
let loading: Promise<void> | undefined;

/**
 * @internal Loads `@opentelemetry/api` (an optional peer) once, at module init, so that the
 * synchronous hot paths below can use it. Without it, tracing is off and costs a property read.
 */
export function loadTracing(): Promise<void> {
  loading ??= import('@opentelemetry/api').then(
    (module) => {
      api = module;
    },
    () => undefined,
  );
  return loading;
}

/** A carrier of W3C headers: the trace context of `ctx`, when there is one to pass on. */
function inject(ctx: Context): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  api!.propagation.inject(ctx, carrier);
  return carrier.traceparent ? carrier : undefined;
}

/**
 * @internal The trace context of the call storing a message (the producing request), as the
 * message's `tm-traceparent` / `tm-tracestate` properties; none when nothing is traced.
 */
export function storingTraceContext(): Record<string, string> | undefined {
  if (!api || !api.trace.getActiveSpan()) return undefined;
  const carrier = inject(api.context.active());
  if (!carrier) return undefined;
  return { [TRACEPARENT_HEADER]: carrier.traceparent, ...(carrier.tracestate ? { [TRACESTATE_HEADER]: carrier.tracestate } : {}) };
}

/**
 * @internal Starts a `publish <topic>` span (PRODUCER) per message that carries a stored trace
 * context, as a child of it, and points the message's headers at that span: `tm-traceparent`
 * (which the consumer side continues from) and the standard `traceparent` / `tracestate`. Kafka
 * client instrumentations (`@opentelemetry/instrumentation-kafkajs`) overwrite `traceparent` with
 * their own span, parented to whatever context is active: `tm-traceparent` keeps the request's
 * trace across the relay. Returns the messages to publish and a function that ends the spans.
 */
export function startPublishSpans(messages: readonly OutgoingMessage[]): { messages: readonly OutgoingMessage[]; end: (error?: unknown) => void } {
  if (!api || !messages.some((m) => m.headers[TRACEPARENT_HEADER])) return { messages, end: () => undefined };
  const { trace, propagation, context, ROOT_CONTEXT, SpanKind, SpanStatusCode } = api;
  const tracer = trace.getTracer(TRACER);
  const spans: Span[] = [];
  const traced = messages.map((message) => {
    const stored = message.headers[TRACEPARENT_HEADER];
    if (!stored) return message;
    const parent = propagation.extract(ROOT_CONTEXT, { traceparent: stored, tracestate: message.headers[TRACESTATE_HEADER] ?? '' });
    const span = tracer.startSpan(
      `publish ${message.topic}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'send',
          'messaging.destination.name': message.topic,
          'messaging.message.id': message.id,
          ...(message.key !== null ? { 'messaging.kafka.message.key': message.key } : {}),
        },
      },
      parent,
    );
    spans.push(span);
    const carrier = inject(trace.setSpan(context.active(), span)) ?? {};
    const headers: Record<string, string> = { ...message.headers, [TRACEPARENT_HEADER]: carrier.traceparent, traceparent: carrier.traceparent };
    if (carrier.tracestate) headers[TRACESTATE_HEADER] = headers.tracestate = carrier.tracestate;
    return { ...message, headers };
  });
  return {
    messages: traced,
    end: (error?: unknown) => {
      for (const span of spans) {
        if (error !== undefined) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message ?? String(error) });
        }
        span.end();
      }
    },
  };
}

/**
 * @internal Runs a consumer's handling of a record in a `process <topic>` span (CONSUMER), the
 * child of the trace context the record carries (`tm-traceparent`, else `traceparent`), so the
 * consumer's effect joins the producing request's trace. Without tracing or a context: `work()`.
 */
export function runInConsumerSpan<T>(topic: string | undefined, headers: (name: string) => string | null, work: () => Promise<T>): Promise<T> {
  if (!api) return work();
  const traceparent = headers(TRACEPARENT_HEADER) ?? headers('traceparent');
  if (!traceparent) return work();
  const { trace, propagation, context, ROOT_CONTEXT, SpanKind, SpanStatusCode } = api;
  const parent = propagation.extract(ROOT_CONTEXT, { traceparent, tracestate: headers(TRACESTATE_HEADER) ?? headers('tracestate') ?? '' });
  const span = trace.getTracer(TRACER).startSpan(
    `process ${topic ?? 'message'}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: { 'messaging.system': 'kafka', 'messaging.operation.type': 'process', ...(topic ? { 'messaging.destination.name': topic } : {}) },
    },
    parent,
  );
  return context.with(trace.setSpan(parent, span), work).then(
    (result) => {
      span.end();
      return result;
    },
    (error: unknown) => {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      throw error;
    },
  );
}
