import { Inject, Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import {
  TRANSACTION_CHECK_HANDLER_METADATA,
  type CheckHandlerMetadata,
} from './check/transaction-check-handler.decorator.js';
import { CheckHandlerRegistry } from './check/check-handler.registry.js';
import { senderRegistry } from './context/runner-registry.js';
import { TransactionalMessageError } from './errors/transactional-message.error.js';
import { INBOX_METADATA } from './consumer/consumer.constants.js';
import type { ResolvedOptions } from './options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT, RESOLVED_OPTIONS, TRANSACTIONAL_MESSAGE_METADATA } from './common/constants.js';
import { MessageSender } from './producer/message-sender.service.js';

/**
 * @internal Finds, at bootstrap, every provider and controller with `@TransactionalMessage` methods
 * (and tells the decorator which module serves them) and every `@TransactionCheckHandler`.
 * Run by the lifecycle: `discover()` at module init, `forget()` once everything has stopped.
 */
@Injectable()
export class TransactionalMessageExplorer {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly registered: Array<{ instance: object | undefined; type: Function }> = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly sender: MessageSender,
    private readonly checkHandlers: CheckHandlerRegistry,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
  ) {}

  discover(): void {
    const methods: string[] = [];
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      const type = instance.constructor;
      const names = this.scanner.getAllMethodNames(prototype).filter((name) => typeof prototype[name] === 'function');
      const decorated = names.filter((name) => Reflect.hasMetadata(TRANSACTIONAL_MESSAGE_METADATA, prototype[name] as object));
      if (decorated.length > 0) {
        if (!this.options.producer) throw consumerOnly(`@TransactionalMessage method ${type.name}.${decorated[0]}`);
        if (wrapper.isDependencyTreeStatic()) {
          senderRegistry.addInstance(instance, this.sender);
          this.registered.push({ instance, type });
        } else {
          // Request-scoped and transient instances are created later, per request or per consumer.
          senderRegistry.addClass(type, this.sender);
          this.registered.push({ instance: undefined, type });
        }
        methods.push(...decorated.map((name) => `${type.name}.${name}`));
      }
      if (!this.options.inbox.enabled) {
        const inboxHandler = names.find((name) => Reflect.hasMetadata(INBOX_METADATA, prototype[name] as object));
        if (inboxHandler) {
          throw new TransactionalMessageError(
            `@Inbox on ${type.name}.${inboxHandler} needs the inbox: set inbox: { enabled: true } in TransactionalMessageModule ` +
              `options and run transactionalMessageInboxMigrations() in this database.`,
          );
        }
      }
      for (const name of names) {
        const metadata = Reflect.getMetadata(TRANSACTION_CHECK_HANDLER_METADATA, prototype[name] as object) as CheckHandlerMetadata | undefined;
        if (!metadata) continue;
        const label = `${type.name}.${name}`;
        if (!this.options.producer) throw consumerOnly(`@TransactionCheckHandler ${label}`);
        if (!wrapper.isDependencyTreeStatic()) {
          throw new TransactionalMessageError(
            `@TransactionCheckHandler ${label} is on a request-scoped or transient provider (or one that depends on one); ` +
              `checks run outside any request, so the handler must be on a singleton provider.`,
          );
        }
        const method = prototype[name] as (message: unknown) => unknown;
        this.checkHandlers.add(metadata.topics, { label, invoke: (message) => method.call(instance, message) });
      }
    }
    this.logger.log(`@TransactionalMessage methods: ${methods.length ? methods.join(', ') : 'none'}`);
    this.logger.log(`@TransactionCheckHandler methods: ${this.checkHandlers.describe()}`);
  }

  forget(): void {
    for (const { instance, type } of this.registered.splice(0)) senderRegistry.remove(instance, type, this.sender);
    this.checkHandlers.clear();
  }
}

/** A producer-side declaration in a consumer-only instance. */
function consumerOnly(what: string): TransactionalMessageError {
  return new TransactionalMessageError(
    `${what} sends messages, but TransactionalMessageModule has no producerGroup: this instance only consumes. ` +
      `Set producerGroup (and kafka or publisher, or relay.enabled: false) and run transactionalMessageMigrations().`,
  );
}
