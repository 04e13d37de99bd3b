/** @internal Metadata key of `@TransactionalMessage` options on a method. */
export const TRANSACTIONAL_MESSAGE_METADATA = 'nestjs-transactional-message:transactional-message';
/** @internal Injection token of the registration's name (`forRoot({ name })`). */
export const INSTANCE_NAME = Symbol('nestjs-transactional-message:instance-name');
/** @internal Injection token of the resolved module options. */
export const RESOLVED_OPTIONS = Symbol('nestjs-transactional-message:resolved-options');
/** @internal Logger context of the library. */
export const LOGGER_CONTEXT = 'TransactionalMessage';
/** @internal Injection token of the MessagePublisher the relay uses. */
export const MESSAGE_PUBLISHER = Symbol('nestjs-transactional-message:publisher');
/** @internal Injection token of this relay instance's name. */
export const RELAY_IDENTITY = Symbol('nestjs-transactional-message:relay-identity');
