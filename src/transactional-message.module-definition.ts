import { ConfigurableModuleBuilder } from '@nestjs/common';
import { INSTANCE_NAME } from './common/constants.js';
import { InvalidModuleOptionsError } from './errors/invalid-module-options.error.js';
import { DEFAULT_INSTANCE_NAME, INSTANCE_NAME_RULE, isInstanceName, registrationAlias } from './options/instance-name.js';
import type { TransactionalMessageModuleOptions } from './options/transactional-message-options.interface.js';
import { EXPORTED_SERVICES } from './transactional-message.tokens.js';

/** Extra options of `forRoot()` / `forRootAsync()` besides the module options. */
export interface TransactionalMessageModuleExtras {
  /** Register the module globally, so decorated providers in every module are served. Default `true`. */
  isGlobal?: boolean;
  /**
   * The registration's name, for an application with several (one per DataSource, each with its
   * own message table, producer group and relay). Without it: `'default'`, whose services inject by
   * their class. A named registration's services inject by token (`getTransactionalMessageProducerToken(name)`,
   * `@InjectTransactionalMessageProducer(name)`), and decorated methods and check handlers choose
   * it with `{ instance: name }`.
   */
  name?: string;
}

/** @internal */
export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<TransactionalMessageModuleOptions>({ moduleName: 'TransactionalMessage' })
  .setClassMethodName('forRoot')
  .setExtras<TransactionalMessageModuleExtras>({ isGlobal: true, name: undefined }, (definition, extras) => {
    if (typeof extras.isGlobal !== 'boolean') {
      throw new InvalidModuleOptionsError('isGlobal', extras.isGlobal, 'true (the default: decorated providers of every module are served) or false');
    }
    if (extras.name !== undefined && !isInstanceName(extras.name)) throw new InvalidModuleOptionsError('name', extras.name, INSTANCE_NAME_RULE);
    const name = extras.name ?? DEFAULT_INSTANCE_NAME;
    // The default registration exports its services by class; a named one by tokens of its name
    // only, so that two registrations never export the same token. Every registration, the default
    // one too, provides the tokens of its name: the library finds a registration's service by them.
    const aliases = EXPORTED_SERVICES.map((service) => ({ provide: registrationAlias(service, name), useExisting: service }));
    return {
      ...definition,
      global: extras.isGlobal,
      providers: [...(definition.providers ?? []), { provide: INSTANCE_NAME, useValue: name }, ...aliases],
      exports: [...(definition.exports ?? []), ...(name === DEFAULT_INSTANCE_NAME ? EXPORTED_SERVICES : aliases.map((a) => a.provide))],
    };
  })
  .build();
