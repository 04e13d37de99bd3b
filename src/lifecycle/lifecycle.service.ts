import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { TransactionalMessageEngine } from '../engine/transactional-message.engine.js';
import { DuplicateModuleError } from '../errors/duplicate-module.error.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { TransactionalMessageExplorer } from '../transactional-message.explorer.js';

/**
 * @internal The registration's Nest lifecycle, over its engine:
 *
 * - module init: refuse a second registration of this name or on this message table, `init()`
 *   the engine (checks, guards, adapters), bind the decorated methods and check handlers that
 *   name this registration, `instrument()` it;
 * - application bootstrap: `start()` the engine (the relay, the checks, pruning);
 * - module destroy (the first shutdown hook, while the DataSource is open): `stop()` it;
 * - application shutdown: forget the bindings and `release()` the engine: nothing that could
 *   still call a check handler is running by then.
 *
 * Init and bootstrap run once, also when the hooks run twice: an application and a microservice
 * created from one testing module (`createNestApplication()` and `createNestMicroservice()`) each
 * run the module's init and bootstrap hooks.
 */
@Injectable()
export class TransactionalMessageLifecycle implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  readonly options: ResolvedOptions;
  private initialised: Promise<void> | undefined;
  private bootstrapped: Promise<void> | undefined;

  constructor(
    @Inject(TransactionalMessageEngine) private readonly engine: TransactionalMessageEngine,
    private readonly explorer: TransactionalMessageExplorer,
    private readonly discovery: DiscoveryService,
  ) {
    this.options = engine.options;
  }

  onModuleInit(): Promise<void> {
    return (this.initialised ??= this.init());
  }

  onApplicationBootstrap(): Promise<void> {
    return (this.bootstrapped ??= this.engine.start());
  }

  onModuleDestroy(): Promise<void> {
    return this.engine.stop();
  }

  onApplicationShutdown(): void {
    this.explorer.forget();
    this.engine.release();
  }

  private async init(): Promise<void> {
    const names = this.registrationNames();
    await this.engine.init();
    this.explorer.discover(names);
    await this.engine.instrument();
  }

  /**
   * The names of the module's registrations in this application; two of one name fail the boot
   * (a decorated method could not tell them apart), as do two on one DataSource's message table.
   */
  private registrationNames(): Set<string> {
    const registrations = this.discovery
      .getProviders()
      .map((wrapper) => wrapper.instance as unknown)
      .filter((instance): instance is TransactionalMessageLifecycle => instance instanceof TransactionalMessageLifecycle);
    const describe = (r: TransactionalMessageLifecycle) =>
      `'${r.options.name}': producer group '${r.options.producerGroup}' on a ${String(r.options.dataSource.options.type)} DataSource, table ${r.options.tableName}`;
    const sameName = registrations.filter((r) => r !== this && r.options.name === this.options.name);
    if (sameName.length > 0) throw new DuplicateModuleError([this, ...sameName].map(describe));
    const sameTable = registrations.filter(
      (r) => r !== this && r.options.producer && this.options.producer && r.options.dataSource === this.options.dataSource && r.options.tableName === this.options.tableName,
    );
    if (sameTable.length > 0) throw new DuplicateModuleError([this, ...sameTable].map(describe));
    return new Set(registrations.map((r) => r.options.name));
  }
}
