import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';
import { MessageTableMissingError } from '../errors/message-table-missing.error.js';
import { MessageTableSharedError } from '../errors/message-table-shared.error.js';
import { MessageStatus } from '../message/message-status.enum.js';
import type { ResolvedOptions } from '../options/transactional-message-options.interface.js';
import { ROW_LEASES_RETIRED } from '../store/dialects/bucket-tables.js';
import { MessageStore } from '../store/message.store.js';

/** @internal Fails the bootstrap, with the fix, when the DataSource or the message table is not ready. */
export class SchemaCheck {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly store: MessageStore,
  ) {}

  async verify(): Promise<void> {
    const { dataSource, tableName } = this.options;
    if (!dataSource.isInitialized) {
      throw new InvalidModuleOptionsError(
        'dataSource',
        'a DataSource that is not initialized',
        'an initialized DataSource: await dataSource.initialize() in the factory, or take it from @nestjs/typeorm',
      );
    }
    // A consumer-only instance has no message table (only the inbox's).
    if (this.options.producer) {
      try {
        await dataSource.query(`SELECT 1 FROM ${this.store.dialect.quote(tableName)} WHERE 1 = 0`);
      } catch (error) {
        throw new MessageTableMissingError(tableName, (error as Error).message);
      }
      // A relay publishes with this instance's settings and shares key buckets with the table's
      // other relays: it must not start on another group's messages. (A writer-only instance or an
      // operator's tool, such as the CLI, may open it; a relay never publishes another group's
      // messages, see DeliveryRelay.)
      if (this.options.relay.enabled) await this.refuseSharedTable();
      // The fourth and fifth migrations: the key bucket column, the bucket lease tables, and the
      // marker that stops relays of the row-lease design (relays of this version own key buckets).
      const q = this.store.dialect.quote;
      try {
        await dataSource.query(`SELECT ${q('bucket')} FROM ${q(tableName)} WHERE 1 = 0`);
        await dataSource.query(`SELECT ${q('bucket')}, ${q('token')} FROM ${q(`${tableName}_bucket`)} WHERE 1 = 0`);
      } catch (error) {
        throw new MessageTableMissingError(tableName, `the migration AddTransactionalMessageKeyBuckets has not run: ${(error as Error).message}`);
      }
      const retired: unknown[] = await dataSource
        .query(`SELECT 1 FROM ${q(`${tableName}_relay`)} WHERE ${q('owner')} = '${ROW_LEASES_RETIRED}'`)
        .catch((error: unknown) => {
          throw new MessageTableMissingError(tableName, `the migration AddTransactionalMessageKeyBuckets has not run: ${(error as Error).message}`);
        });
      if (retired.length === 0) {
        throw new MessageTableMissingError(
          tableName,
          'the migration RetireTransactionalMessageRowLeases has not run (it makes key buckets the only relay design; see docs/upgrading.md)',
        );
      }
      // The sixth migration: the due time of delayed messages.
      try {
        await dataSource.query(`SELECT ${q('deliver_at')} FROM ${q(tableName)} WHERE 1 = 0`);
      } catch (error) {
        throw new MessageTableMissingError(tableName, `the migration AddTransactionalMessageDelayedMessages has not run: ${(error as Error).message}`);
      }
    }
    if (this.options.inbox.enabled) {
      const inbox = this.options.inbox.tableName;
      try {
        await dataSource.query(`SELECT 1 FROM ${this.store.dialect.quote(inbox)} WHERE 1 = 0`);
      } catch (error) {
        throw new MessageTableMissingError(inbox, (error as Error).message, 'transactionalMessageInboxMigrations');
      }
    }
  }

  /** One table, one producer group: refuses a table that holds live messages of another group. */
  private async refuseSharedTable(): Promise<void> {
    const { dataSource, tableName, producerGroup } = this.options;
    const q = this.store.dialect.quote;
    const p = this.store.dialect.param;
    const rows: Array<{ producer_group: string }> = await dataSource.query(
      `SELECT DISTINCT ${q('producer_group')} AS producer_group FROM ${q(tableName)} ` +
        `WHERE ${q('status')} IN ('${MessageStatus.HALF}', '${MessageStatus.COMMITTED}', '${MessageStatus.DELAYED}') AND ${q('producer_group')} <> ${p(1)}`,
      [producerGroup],
    );
    if (rows.length > 0) throw new MessageTableSharedError(tableName, producerGroup, rows.map((r) => r.producer_group).sort());
  }
}
