import { TransactionalMessageConfigurationError } from './configuration.error.js';

/**
 * The message table holds live messages (HALF or COMMITTED) of another producer group. One table
 * serves one producer group: its relay would publish the other group's messages with its own
 * Kafka settings, and its relays would share key buckets with the other group's.
 */
export class MessageTableSharedError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_MESSAGE_TABLE_SHARED'`. */
  static override readonly code: string = 'TM_MESSAGE_TABLE_SHARED';

  constructor(
    readonly tableName: string,
    readonly producerGroup: string,
    readonly otherGroups: readonly string[],
  ) {
    super(
      `The table ${JSON.stringify(tableName)} holds live messages of producer group(s) ${otherGroups.map((g) => JSON.stringify(g)).join(', ')}, ` +
        `and this instance's producerGroup is ${JSON.stringify(producerGroup)}. One message table serves one producer group: ` +
        `give this service a table of its own (tableName, with transactionalMessageMigrations({ tableName })), or, if the group was ` +
        `renamed, let the old group's instances finish their messages first (nothing stored was changed).`,
    );
  }
}
