import type { DataSource } from 'typeorm';

/** What happens when code inside a transactional method queries outside its transaction. */
export type QueriesOutsideTransactionMode = 'error' | 'warn' | 'allow';

/** Options of `TransactionalMessageModule.forRoot()` / `forRootAsync()`. */
export interface TransactionalMessageModuleOptions {
  /** The TypeORM DataSource that holds both your business tables and the message table. Required. */
  dataSource: DataSource;
  /**
   * The producer group (RocketMQ): the name of the application that sends these messages; the
   * instances of a group check each other's half messages. 1-255 characters of letters, digits,
   * `.`, `_`, `-` or `:`. Required.
   */
  producerGroup: string;
  /** Name of the message table (must match the migrations'). Default `'transactional_message'`. */
  tableName?: string;
  /** How long after it is stored a HALF message is first checked, in ms. Default `10000`. */
  checkImmunityMs?: number;
  /**
   * The largest message accepted, in bytes: body, key, tags and properties. A larger one is
   * refused when it is sent, before anything is stored. Default `1000000` (below Kafka's
   * default `message.max.bytes` of 1048588).
   */
  maxMessageBytes?: number;
  /**
   * Inside a transactional method, a query sent through a repository or EntityManager that is not
   * bound to the transaction (an `@InjectRepository()` repository, `dataSource.manager`) would run
   * outside it. `'error'` (default) throws QueryOutsideTransactionError; `'warn'` logs once per
   * method and lets it run; `'allow'` lets it run silently.
   */
  queriesOutsideTransaction?: QueriesOutsideTransactionMode;
  /**
   * Join transactions of `@nestjs-cls/transactional` (TypeORM adapter) when it is installed and
   * registered for the same DataSource, and open transactions through it so that
   * `TransactionHost.tx` sees them. Default `true`; it is ignored when the package is absent.
   */
  joinClsTransactions?: boolean;
  /** `connectionName` of the `ClsPluginTransactional` to join, when you registered several. Default none. */
  clsConnectionName?: string;
}

/** @internal The options after defaults and validation. */
export interface ResolvedOptions {
  dataSource: DataSource;
  producerGroup: string;
  tableName: string;
  checkImmunityMs: number;
  maxMessageBytes: number;
  queriesOutsideTransaction: QueriesOutsideTransactionMode;
  joinClsTransactions: boolean;
  clsConnectionName: string | undefined;
}
