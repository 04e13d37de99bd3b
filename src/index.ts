// The public API of nestjs-transactional-message. Everything not exported here is internal.

export { TransactionalMessageModule } from './transactional-message.module.js';
export type { TransactionalMessageModuleExtras } from './transactional-message.module-definition.js';
export type {
  TransactionalMessageModuleOptions,
  QueriesOutsideTransactionMode,
  RelayOptions,
  CheckOptions,
  InboxOptions,
  CheckExhaustedAction,
  DeadMessagePolicy,
} from './options/transactional-message-options.interface.js';
export { DEFAULT_OPTIONS, DEFAULT_RELAY_OPTIONS, DEFAULT_CHECK_OPTIONS, DEFAULT_INBOX_OPTIONS } from './options/resolve-options.js';
export { DEFAULT_INSTANCE_NAME } from './options/instance-name.js';
export {
  getTransactionalMessageProducerToken,
  getTransactionContextToken,
  getTransactionalInboxToken,
  getTransactionalMessageRelayToken,
  getTransactionalMessageAdminToken,
  getTransactionalMessageHealthIndicatorToken,
  InjectTransactionalMessageProducer,
  InjectTransactionContext,
} from './transactional-message.tokens.js';

export { TransactionalMessage } from './decorators/transactional-message.decorator.js';
export type { TransactionalMessageOptions, FromCall } from './options/message-method-options.interface.js';
export { currentHalfMessage } from './context/current-half-message.js';
export type { HalfMessageHandle } from './context/half-message-draft.js';
export { TransactionContext, type RunInTransactionOptions } from './context/transaction-context.service.js';
export { TransactionalMessageRelay } from './engine/transactional-message.relay.js';
export {
  TransactionalMessageAdmin,
  LIVE_STATUSES,
  type LiveStatus,
  type MessageQuery,
  type MessagePage,
  type MessageSummary,
  type OperatorInfo,
} from './admin/transactional-message-admin.service.js';
export { TransactionalMessageAdminModule, type AdminHttpOptions } from './admin/admin-http.module.js';
export {
  TransactionalMessageHealthIndicator,
  type HealthThresholds,
  type TransactionalMessageHealth,
} from './operations/health.indicator.js';
export { TRACEPARENT_HEADER, TRACESTATE_HEADER } from './telemetry/tracing.js';
export { METER_NAME } from './operations/metrics.service.js';
export type { IsolationLevel } from './options/isolation-level.js';

export {
  TransactionalMessageProducer,
  type SentHalfMessage,
  type SendResult,
  type LocalTransactionExecutor,
  type ProducerCallOptions,
} from './producer/transactional-message.producer.js';

export {
  TransactionCheckHandler,
  type TransactionCheckHandlerOptions,
} from './check/transaction-check-handler.decorator.js';
export type { HalfMessage } from './check/half-message.interface.js';

export type { MessagePublisher, OutgoingMessage, PublishFailure } from './publisher/message-publisher.interface.js';
export { KafkaPublisher } from './publisher/kafka/kafka.publisher.js';
export { ClientProxyPublisher, type ClientProxyPublisherOptions, type EmittingClient } from './publisher/client-proxy/client-proxy.publisher.js';
export type { ClientProxyTransport } from './publisher/client-proxy/client-proxy-transport.js';
export { KAFKA_CLIENTS, DEFAULT_KAFKA_CLIENT, type KafkaOptions, type KafkaSaslOptions, type KafkaClientName } from './publisher/kafka/kafka-options.interface.js';
export {
  MESSAGE_ID_HEADER,
  PRODUCER_GROUP_HEADER,
  TAGS_HEADER,
  CONTENT_TYPE_HEADER,
  KEY_HEADER,
} from './publisher/message-headers.js';

export { TransactionalInbox, type InboxResult } from './consumer/transactional-inbox.service.js';
export { Inbox, TagFilter, MessageInfo, type InboxDecoratorOptions } from './consumer/inbox.decorator.js';
export { readConsumedMessage, type ConsumedMessage } from './consumer/consumed-message.js';
export {
  transactionalMessageInboxMigrations,
  DEFAULT_INBOX_TABLE_NAME,
  type InboxMigrationsOptions,
} from './consumer/inbox-migrations.js';

export {
  onTransactionalMessageEvent,
  transactionalMessageChannelName,
  type TransactionalMessageEventMap,
  type TransactionalMessageEventName,
  type EventSource,
} from './events/transactional-message-events.js';

export { TransactionStatus } from './message/transaction-status.enum.js';
export { MessageStatus } from './message/message-status.enum.js';
export type { MessageInput } from './message/message.interface.js';
export { JSON_CONTENT_TYPE, BYTES_CONTENT_TYPE, RESERVED_PROPERTY_PREFIX } from './message/encode-message.js';
export type { StoredMessage, CheckAttempt } from './store/stored-message.interface.js';
export {
  transactionalMessageMigrations,
  type TransactionalMessageMigrationsOptions,
  type MigrationClass,
} from './store/migrations/message-table.migrations.js';
export { DEFAULT_TABLE_NAME } from './store/table-name.js';

// Errors: the classes callers branch on; every error also has a stable `code` (TransactionalMessageErrorCode).
export { TransactionalMessageError } from './errors/transactional-message.error.js';
export { TransactionalMessageErrorCode, type TransactionalMessageErrorCodeValue } from './errors/error-codes.js';
export { TransactionalMessageConfigurationError } from './errors/configuration.error.js';
export { TransactionUsageError } from './errors/transaction-usage.error.js';
export { InvalidMessageError } from './errors/invalid-message.error.js';
export { TransactionAlreadyEndedError } from './errors/transaction-already-ended.error.js';
export { MessageNotFoundError } from './errors/message-not-found.error.js';
export { ConnectionAcquireTimeoutError } from './errors/connection-acquire-timeout.error.js';
export { PreparedStatementUnavailableError } from './errors/prepared-statement-unavailable.error.js';
export { PartialPublishError } from './errors/partial-publish.error.js';
