import { TransactionalMessageConfigurationError } from './configuration.error.js';

/**
 * A `@TransactionalMessage` method was called on an instance that no running
 * `TransactionalMessageModule` knows: the module is not imported, the application is not
 * initialised yet (or already closed), or the instance was created with `new` instead of by Nest.
 */
export class TransactionalMessageModuleMissingError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_MODULE_MISSING'`. */
  static override readonly code: string = 'TM_MODULE_MISSING';

  constructor(
    readonly method: string,
    readonly instance = 'default',
  ) {
    super(
      `@TransactionalMessage method ${method} was called, but no initialised TransactionalMessageModule ` +
        (instance === 'default'
          ? `manages this instance. Import TransactionalMessageModule.forRoot()/forRootAsync() in the application, `
          : `named '${instance}' manages this instance. Import TransactionalMessageModule.forRoot({ name: '${instance}', ... }) in the application, `) +
        `let Nest create the provider (not \`new\`), and call it after app.init() and before app.close(). ` +
        `In a unit test without the module, captureTransactionalMessages().bind(instance) from 'nestjs-transactional-message/testing' ` +
        `runs its decorated methods without a database and records their messages.`,
    );
  }
}
