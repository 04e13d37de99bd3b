import type { HalfMessageDraft } from '../context/half-message-draft.js';
import type { TransactionalMessageOptions } from '../options/message-method-options.interface.js';
import { encodeMessage, validateProperties, type EncodedMessage, type MessageDefaults } from '../message/encode-message.js';
import type { MessageInput } from '../message/message.interface.js';
import { TransactionStatus } from '../message/transaction-status.enum.js';
import { storingTraceContext } from '../telemetry/tracing.js';

/**
 * @internal The message of a `@TransactionalMessage` call that returned `result`: what the method
 * set on its draft, else the decorator's options (callbacks get the arguments and the result).
 * Validated and encoded; throws before anything is stored.
 */
export function buildMessage(
  draft: HalfMessageDraft,
  options: TransactionalMessageOptions,
  args: unknown[],
  result: unknown,
  label: string,
  defaults: MessageDefaults,
): EncodedMessage {
  const fromCall = (option: unknown) => (typeof option === 'function' ? option(args, result) : option);
  let body = draft.body ? draft.body.value : options.body ? options.body(args, result) : result;
  // A rolled-back message is never delivered; do not make its method invent a body.
  if (body === undefined && draft.outcome === TransactionStatus.ROLLBACK) body = null;
  return encodeMessage(
    {
      topic: options.topic,
      key: draft.key ?? fromCall(options.key),
      tags: draft.tags ?? fromCall(options.tags),
      // The callback's result is checked before it is merged: spreading a string or an array would make it an object.
      properties: { ...validateProperties(fromCall(options.properties), label), ...draft.properties },
      body,
      checkImmunityMs: draft.checkImmunityMs ?? options.checkImmunityMs,
      ...delayOf(draft, options, fromCall),
    },
    defaults,
    label,
    draft.id,
  );
}

/** The delay the method set on its draft (whichever kind) wins over the options: one delay per message. */
function delayOf(draft: HalfMessageDraft, options: TransactionalMessageOptions, fromCall: (option: unknown) => unknown): Pick<MessageInput, 'delayMs' | 'deliverAt'> {
  if (draft.delay === undefined) return { delayMs: fromCall(options.delayMs) as number, deliverAt: fromCall(options.deliverAt) as Date };
  if (draft.delay === null) return {};
  return 'at' in draft.delay ? { deliverAt: draft.delay.at } : { delayMs: draft.delay.delayMs };
}

/** @internal The message with the trace context of the call storing it (when something is traced), for the relay and the consumer to continue. */
export function withTraceContext(message: EncodedMessage): EncodedMessage {
  const trace = storingTraceContext();
  return trace ? { ...message, properties: { ...message.properties, ...trace } } : message;
}
