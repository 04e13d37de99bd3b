/**
 * The outcome of a local transaction, as in Apache RocketMQ: what a `@TransactionalMessage`
 * method, a `localExecute` callback or a `@TransactionCheckHandler` reports.
 */
export enum TransactionStatus {
  /** The local transaction committed: deliver the message. */
  COMMIT = 'COMMIT',
  /** The local transaction rolled back: discard the message; consumers never see it. */
  ROLLBACK = 'ROLLBACK',
  /** Not known yet: keep the half message and ask the check handler later. */
  UNKNOWN = 'UNKNOWN',
}
