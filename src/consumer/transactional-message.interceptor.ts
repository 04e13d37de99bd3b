import { Injectable, Logger, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { ModuleRef, Reflector } from '@nestjs/core';
import { from, lastValueFrom, of, type Observable } from 'rxjs';
import { LOGGER_CONTEXT } from '../common/constants.js';
import { runInConsumerSpan } from '../telemetry/tracing.js';
import { headerText, readConsumedMessage } from './consumed-message.js';
import { rpcHeaders, rpcTopic } from './rpc-headers.js';
import { INBOX_METADATA, TAG_FILTER_METADATA, type InboxMetadata } from './consumer.constants.js';
import type { TagExpression } from './tag-expression.js';
import { TransactionalInbox } from './transactional-inbox.service.js';
import { TransactionalMessageConfigurationError } from '../errors/configuration.error.js';
import { DEFAULT_INSTANCE_NAME, registrationAlias } from '../options/instance-name.js';

/**
 * @internal Applies `@TagFilter` and `@Inbox` to a Kafka `@EventPattern` handler: skips records
 * whose tags do not match, and runs the handler inside the inbox's transaction. Applied once per
 * record and handler even when both decorators added it.
 */
@Injectable()
export class TransactionalMessageInterceptor implements NestInterceptor {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  /** Per record, the handlers already intercepted: several handlers of one topic share the record's context. */
  private readonly handled = new WeakMap<object, Set<Function>>();

  /** The inbox of each registration an `@Inbox` names, found once. */
  private readonly inboxes = new Map<string, TransactionalInbox>();

  constructor(
    private readonly reflector: Reflector,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** The inbox of registration `name`, wherever the application registered it. */
  private inboxOf(name: string, label: string): TransactionalInbox {
    let inbox = this.inboxes.get(name);
    if (!inbox) {
      try {
        inbox = this.moduleRef.get<TransactionalInbox>(registrationAlias(TransactionalInbox, name), { strict: false });
      } catch {
        throw new TransactionalMessageConfigurationError(
          `@Inbox on ${label} records into the inbox of registration '${name}', but the application has no TransactionalMessageModule ` +
            `registration of that name: register forRoot(${name === DEFAULT_INSTANCE_NAME ? '' : `{ name: '${name}', ... }`}) with inbox: { enabled: true }, or fix the instance.`,
        );
      }
      this.inboxes.set(name, inbox);
    }
    return inbox;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'rpc') return next.handle();
    const rpc = context.switchToRpc().getContext<object>();
    if (!rpc || typeof rpc !== 'object') return next.handle();
    const handler = context.getHandler();
    const handlers = this.handled.get(rpc) ?? new Set<Function>();
    if (handlers.has(handler)) return next.handle();
    this.handled.set(rpc, handlers.add(handler));
    const label = `${context.getClass().name}.${handler.name}`;
    const headers = rpcHeaders(rpc, context.switchToRpc().getData());
    const message = readConsumedMessage(headers);

    // The handling joins the producing request's trace (when the record carries one and tracing is on).
    const traced = (work: () => Promise<unknown>) => from(runInConsumerSpan(rpcTopic(rpc), (name) => headerText(headers[name]), work));
    const filter = this.reflector.get<TagExpression | undefined>(TAG_FILTER_METADATA, handler);
    if (filter && !filter.matches(message.tags)) {
      this.logger.debug(`${label}: skipped message ${message.id} (tags ${message.tags.join(',') || 'none'} do not match '${filter.source}')`);
      return of(undefined);
    }
    const handle = () => lastValueFrom(next.handle(), { defaultValue: undefined });
    const inbox = this.reflector.get<InboxMetadata | undefined>(INBOX_METADATA, handler);
    if (!inbox) return traced(handle);
    if (!message.id) {
      this.logger.warn(`${label}: a record without a tm-message-id header cannot be deduplicated; handling it without the inbox`);
      return traced(handle);
    }
    const consumer = inbox.consumer ?? label;
    const registration = this.inboxOf(inbox.instance ?? DEFAULT_INSTANCE_NAME, label);
    return traced(() =>
      registration.process(consumer, message.id!, handle).then((outcome) => {
        if (outcome.duplicate) {
          this.logger.debug(`${label}: message ${message.id} was already processed by consumer '${consumer}'; skipped`);
          return undefined;
        }
        return outcome.result;
      }),
    );
  }
}
