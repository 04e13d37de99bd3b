/** @internal Metadata key of `@TransactionalMessage` options on a method. */
export const TRANSACTIONAL_MESSAGE_METADATA = 'nestjs-transactional-message:transactional-message';
/** @internal Injection token of the registration's name (`forRoot({ name })`). */
export const INSTANCE_NAME = Symbol('nestjs-transactional-message:instance-name');
/** @internal Injection token of the resolved module options. */
export const RESOLVED_OPTIONS = Symbol('nestjs-transactional-message:resolved-options');
/** @internal Logger context of the library. */
export const LOGGER_CONTEXT = 'TransactionalMessage';
