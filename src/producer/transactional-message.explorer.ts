import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { senderRegistry } from '../context/runner-registry.js';
import { LOGGER_CONTEXT, TRANSACTIONAL_MESSAGE_METADATA } from '../transactional-message.constants.js';
import { MessageSender } from './message-sender.service.js';

/**
 * @internal Finds, at bootstrap, every provider and controller with `@TransactionalMessage`
 * methods and tells the decorator which module serves them.
 */
@Injectable()
export class TransactionalMessageExplorer implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly registered: Array<{ instance: object | undefined; type: Function }> = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly sender: MessageSender,
  ) {}

  onModuleInit(): void {
    const methods: string[] = [];
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      const decorated = this.scanner
        .getAllMethodNames(prototype)
        .filter((name) => typeof prototype[name] === 'function' && Reflect.hasMetadata(TRANSACTIONAL_MESSAGE_METADATA, prototype[name] as object));
      if (decorated.length === 0) continue;
      const type = instance.constructor;
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
    this.logger.log(`@TransactionalMessage methods: ${methods.length ? methods.join(', ') : 'none'}`);
  }

  onModuleDestroy(): void {
    for (const { instance, type } of this.registered.splice(0)) senderRegistry.remove(instance, type, this.sender);
  }
}
