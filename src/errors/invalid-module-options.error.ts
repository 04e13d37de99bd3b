import { describeValue, TransactionalMessageError } from './transactional-message.error.js';

/** A `TransactionalMessageModule.forRoot()` / `forRootAsync()` option is missing or invalid. */
export class InvalidModuleOptionsError extends TransactionalMessageError {
  constructor(
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(
      `TransactionalMessageModule option '${option}' is ${describeValue(value)}; expected ${expected}. ` +
        `Fix it in TransactionalMessageModule.forRoot()/forRootAsync().`,
    );
  }
}
