import { Logger } from '@nestjs/common';
import { logLevel, type logCreator } from 'kafkajs';

/**
 * @internal Routes kafkajs logs into Nest's Logger. kafkajs logs every failed request as an
 * error, including the ones it then retries (a broker starting up, a leader moving): they become
 * warnings; the relay logs what really failed. The warning kafkajs gives for an idempotent
 * producer with bounded retries is lowered to debug: the relay bounds them on purpose (a down
 * broker must not hang a send forever) and retries itself.
 */
export function kafkaLogBridge(context: string): logCreator {
  const logger = new Logger(context);
  return () => ({ level, log }) => {
    const { message, ...extra } = log as { message: string } & Record<string, unknown>;
    const text = `${message}${extra.error ? `: ${String(extra.error)}` : ''}`;
    if (message.startsWith('Limiting retries for the idempotent producer')) return logger.debug(text);
    switch (level) {
      case logLevel.ERROR:
      case logLevel.WARN:
        return logger.warn(text);
      case logLevel.INFO:
        return logger.log(text);
      default:
        return logger.debug(text);
    }
  };
}
