import { ConfigurableModuleBuilder } from '@nestjs/common';
import { InvalidModuleOptionsError } from './errors/invalid-module-options.error.js';
import type { TransactionalMessageModuleOptions } from './options/transactional-message-options.interface.js';

/** Extra options of `forRoot()` / `forRootAsync()` besides the module options. */
export interface TransactionalMessageModuleExtras {
  /** Register the module globally, so decorated providers in every module are served. Default `true`. */
  isGlobal?: boolean;
}

/** @internal */
export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<TransactionalMessageModuleOptions>({ moduleName: 'TransactionalMessage' })
  .setClassMethodName('forRoot')
  .setExtras<TransactionalMessageModuleExtras>({ isGlobal: true }, (definition, extras) => {
    if (typeof extras.isGlobal !== 'boolean') {
      throw new InvalidModuleOptionsError('isGlobal', extras.isGlobal, 'true (the default: decorated providers of every module are served) or false');
    }
    return { ...definition, global: extras.isGlobal };
  })
  .build();
