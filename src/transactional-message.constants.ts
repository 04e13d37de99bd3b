/** @internal Metadata key of `@TransactionalMessage` options on a method. */
export const TRANSACTIONAL_MESSAGE_METADATA = 'nestjs-transactional-message:transactional-message';
/** @internal Injection token of the resolved module options. */
export const RESOLVED_OPTIONS = Symbol('nestjs-transactional-message:resolved-options');
/** @internal Logger context of the library. */
export const LOGGER_CONTEXT = 'TransactionalMessage';
