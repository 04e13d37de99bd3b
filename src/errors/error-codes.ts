/**
 * The `code` of every error the library throws, by name: compare `error.code` with these instead of
 * string literals. Grouped by the class to catch (docs/operations.md, Errors).
 */
export const TransactionalMessageErrorCode = {
  // TransactionalMessageConfigurationError: the setup is wrong (boot, or the first use).
  INVALID_MODULE_OPTIONS: 'TM_INVALID_MODULE_OPTIONS',
  MODULE_MISSING: 'TM_MODULE_MISSING',
  MESSAGE_TABLE_MISSING: 'TM_MESSAGE_TABLE_MISSING',
  MESSAGE_TABLE_SHARED: 'TM_MESSAGE_TABLE_SHARED',
  DUPLICATE_MODULE: 'TM_DUPLICATE_MODULE',
  OPTIONAL_DEPENDENCY_MISSING: 'TM_OPTIONAL_DEPENDENCY_MISSING',
  UNSUPPORTED_DATABASE: 'TM_UNSUPPORTED_DATABASE',
  PUBLISHER_CONFIGURATION: 'TM_PUBLISHER_CONFIGURATION',
  // TransactionUsageError: a transaction used in a way that would break the guarantees.
  TRANSACTION_REQUIRED: 'TM_TRANSACTION_REQUIRED',
  TRANSACTION_CONTEXT_ENDED: 'TM_TRANSACTION_CONTEXT_ENDED',
  QUERY_OUTSIDE_TRANSACTION: 'TM_QUERY_OUTSIDE_TRANSACTION',
  NO_TRANSACTION_CONTEXT: 'TM_NO_TRANSACTION_CONTEXT',
  NESTED_INDEPENDENT_TRANSACTION: 'TM_NESTED_INDEPENDENT_TRANSACTION',
  TRANSACTION_ROLLBACK_ONLY: 'TM_TRANSACTION_ROLLBACK_ONLY',
  // InvalidMessageError: the call's message is invalid.
  INVALID_MESSAGE: 'TM_INVALID_MESSAGE',
  MESSAGE_BODY_NOT_SERIALIZABLE: 'TM_MESSAGE_BODY_NOT_SERIALIZABLE',
  MESSAGE_TOO_LARGE: 'TM_MESSAGE_TOO_LARGE',
  // Classes of their own: outcomes a caller handles.
  TRANSACTION_ALREADY_ENDED: 'TM_TRANSACTION_ALREADY_ENDED',
  MESSAGE_NOT_FOUND: 'TM_MESSAGE_NOT_FOUND',
  CONNECTION_ACQUIRE_TIMEOUT: 'TM_CONNECTION_ACQUIRE_TIMEOUT',
  PREPARED_STATEMENT_UNAVAILABLE: 'TM_PREPARED_STATEMENT_UNAVAILABLE',
  PARTIAL_PUBLISH: 'TM_PARTIAL_PUBLISH',
} as const;

/** One of {@link TransactionalMessageErrorCode}'s values. */
export type TransactionalMessageErrorCodeValue = (typeof TransactionalMessageErrorCode)[keyof typeof TransactionalMessageErrorCode];
