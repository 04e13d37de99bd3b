import { TransactionalMessageConfigurationError } from './configuration.error.js';

/**
 * The Kafka client was refused for its configuration (authentication, authorization of the
 * producer, TLS, an unsupported protocol version) when the module connected at boot. Nothing can
 * be published until the `kafka` options are fixed, so the boot fails instead of storing messages
 * that no relay could deliver. An unreachable broker is not this error: the boot goes on and the
 * relay retries.
 */
export class PublisherConfigurationError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_PUBLISHER_CONFIGURATION'`. */
  static override readonly code: string = 'TM_PUBLISHER_CONFIGURATION';

  constructor(
    readonly reason: string,
    override readonly cause: unknown,
  ) {
    super(
      `The Kafka publisher was refused by the broker for its configuration: ${reason}. Fix the module's kafka options ` +
        `(brokers, ssl, sasl, clientId) or the broker's ACLs; an idempotent producer also needs the IdempotentWrite ` +
        `permission on the cluster.`,
    );
  }
}
