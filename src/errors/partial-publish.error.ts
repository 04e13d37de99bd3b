import { TransactionalMessageError } from './transactional-message.error.js';

/**
 * A publish the downstream accepted in part: `MessagePublisher.publish` rejects with it when it
 * knows which messages were acknowledged (Kafka answers per partition). The relay marks the
 * `accepted` ones delivered and treats the rest as failed with `cause` (classified by the
 * publisher's `classify`): they alone are retried, so a refusal of one partition never publishes
 * the messages of the others again.
 */
export class PartialPublishError extends TransactionalMessageError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_PARTIAL_PUBLISH'`. */
  static override readonly code: string = 'TM_PARTIAL_PUBLISH';

  /**
   * `accepted`: the ids (`OutgoingMessage.id`) of the messages the downstream acknowledged.
   * `cause`: the error of the rest, as the client threw it.
   */
  constructor(
    readonly accepted: ReadonlySet<string>,
    override readonly cause: unknown,
    total: number,
  ) {
    super(
      `The downstream accepted ${accepted.size} of ${total} message(s) and refused the rest: ` +
        `${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}
