import { Inject, Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import {
  TRANSACTION_CHECK_HANDLER_METADATA,
  type CheckHandlerMetadata,
} from './check/transaction-check-handler.decorator.js';
import type { CheckHandlerRegistry } from './check/check-handler.registry.js';
import { TransactionalMessageEngine } from './engine/transactional-message.engine.js';
import { bindMethods } from './context/method-binding.js';
import { TransactionalMessageError } from './errors/transactional-message.error.js';
import { INBOX_METADATA, type InboxMetadata } from './consumer/consumer.constants.js';
import type { ResolvedOptions } from './options/transactional-message-options.interface.js';
import { LOGGER_CONTEXT, TRANSACTIONAL_MESSAGE_METADATA } from './common/constants.js';
import type { MessageSender } from './producer/message-sender.service.js';
import { DEFAULT_INSTANCE_NAME } from './options/instance-name.js';
import type { TransactionalMessageOptions } from './options/message-method-options.interface.js';

/**
 * @internal Finds, at bootstrap, every provider and controller with `@TransactionalMessage` methods
 * and binds them to this registration's sender (its engine's), and every `@TransactionCheckHandler`
 * (into its engine's registry). Run by the lifecycle: `discover()` at module init, `forget()` once
 * everything has stopped.
 */
@Injectable()
export class TransactionalMessageExplorer {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  /** Undoes each binding this registration made, at `forget()`. */
  private readonly unbind: Array<() => void> = [];
  private readonly name: string;

  private readonly sender: MessageSender;
  private readonly checkHandlers: CheckHandlerRegistry;
  private readonly options: ResolvedOptions;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    @Inject(TransactionalMessageEngine) engine: TransactionalMessageEngine,
  ) {
    this.sender = engine.sender;
    this.checkHandlers = engine.checkHandlers;
    this.options = engine.options;
    this.name = engine.options.name;
  }

  /**
   * Binds the decorated methods and check handlers that name this registration (`{ instance }`,
   * `'default'` without one). `names`: every registration of the application, to refuse a method
   * that names none of them at boot rather than at its first call.
   */
  discover(names: ReadonlySet<string>): void {
    const instanceOf = (metadata: { instance?: string } | undefined) => metadata?.instance ?? DEFAULT_INSTANCE_NAME;
    const unknown = (what: string, instance: string) =>
      new TransactionalMessageError(
        `${what} names instance '${instance}', but no TransactionalMessageModule registration has that name ` +
          `(registered: ${[...names].map((n) => `'${n}'`).join(', ')}). Register forRoot({ name: '${instance}', ... }) or fix the name.`,
      );
    const methods: string[] = [];
    const of = this.name === DEFAULT_INSTANCE_NAME ? '' : ` of '${this.name}'`;
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      const type = instance.constructor;
      const methodNames = this.scanner.getAllMethodNames(prototype).filter((name) => typeof prototype[name] === 'function');
      const decorated = methodNames.filter((name) => {
        const metadata = Reflect.getMetadata(TRANSACTIONAL_MESSAGE_METADATA, prototype[name] as object) as TransactionalMessageOptions | undefined;
        if (!metadata) return false;
        if (!names.has(instanceOf(metadata))) throw unknown(`@TransactionalMessage method ${type.name}.${name}`, instanceOf(metadata));
        return instanceOf(metadata) === this.name;
      });
      if (decorated.length > 0) {
        if (!this.options.producer) throw consumerOnly(`@TransactionalMessage method ${type.name}.${decorated[0]}`);
        // Request-scoped and transient instances are created later, per request or per consumer (the
        // instance here is not one of them): bind their class.
        const perInstance = wrapper.isDependencyTreeStatic() && !wrapper.isTransient;
        this.unbind.push(bindMethods(perInstance ? instance : type, this.name, this.sender));
        methods.push(...decorated.map((name) => `${type.name}.${name}`));
      }
      for (const name of methodNames) {
        const inbox = Reflect.getMetadata(INBOX_METADATA, prototype[name] as object) as InboxMetadata | undefined;
        if (!inbox) continue;
        if (!names.has(inbox.instance)) throw unknown(`@Inbox on ${type.name}.${name}`, inbox.instance);
        if (inbox.instance === this.name && !this.options.inbox.enabled) {
          throw new TransactionalMessageError(
            `@Inbox on ${type.name}.${name} needs the inbox: set inbox: { enabled: true } in the TransactionalMessageModule ` +
              `options${of} and run transactionalMessageInboxMigrations() in its database.`,
          );
        }
      }
      for (const name of methodNames) {
        const metadata = Reflect.getMetadata(TRANSACTION_CHECK_HANDLER_METADATA, prototype[name] as object) as CheckHandlerMetadata | undefined;
        if (!metadata) continue;
        const label = `${type.name}.${name}`;
        if (!names.has(metadata.instance)) throw unknown(`@TransactionCheckHandler ${label}`, metadata.instance);
        if (metadata.instance !== this.name) continue;
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
    this.logger.log(`@TransactionalMessage methods${of}: ${methods.length ? methods.join(', ') : 'none'}`);
    this.logger.log(`@TransactionCheckHandler methods${of}: ${this.checkHandlers.describe()}`);
  }

  forget(): void {
    for (const undo of this.unbind.splice(0)) undo();
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
