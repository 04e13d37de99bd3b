import { Logger } from '@nestjs/common';

/** kafkajs' log levels (its `logLevel` enum), without loading kafkajs. */
const KAFKAJS_DEBUG = 5;

/** The shape of kafkajs' `logCreator`. */
type LogCreator = (level: number) => (entry: { namespace: string; level: number; label: string; log: Record<string, unknown> }) => void;

/**
 * @internal Routes kafkajs logs into Nest's Logger, at debug. kafkajs logs every failed request
 * (a broker starting up, a topic created on the first publish, a leader moving, each connection
 * retry while a broker is down) as an error or a warning, including the ones it then retries;
 * those are no news to an operator. The relay logs what really failed, once, with the cause.
 */
export function kafkaLogBridge(context: string): { logLevel: number; logCreator: LogCreator } {
  const logger = new Logger(context);
  return {
    logLevel: KAFKAJS_DEBUG,
    logCreator: () => ({ label, log }) => {
      const { message, ...extra } = log as { message: string } & Record<string, unknown>;
      logger.debug(`${label} ${message}${extra.error ? `: ${String(extra.error)}` : ''}`);
    },
  };
}
