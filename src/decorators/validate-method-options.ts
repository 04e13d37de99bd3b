import { INSTANCE_NAME_RULE, isInstanceName } from '../options/instance-name.js';
import { validateIsolationLevel } from '../options/isolation-level.js';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import {
  validateDelayMs,
  validateDeliverAt,
  validateDurationMs,
  validateKey,
  validateProperties,
  validateTags,
  validateTopic,
} from '../message/encode-message.js';
import type { TransactionalMessageOptions } from '../options/message-method-options.interface.js';

const KNOWN = new Set(['topic', 'key', 'tags', 'properties', 'body', 'checkImmunityMs', 'delayMs', 'deliverAt', 'mandatory', 'isolationLevel', 'instance']);

/**
 * @internal Validates everything about `@TransactionalMessage` options that is known when the
 * class is defined, so a typo fails at import time rather than on the first call.
 */
export function validateMethodOptions(options: TransactionalMessageOptions, where: string): TransactionalMessageOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidMessageError('options', options, "an object like { topic: 'order.paid' }", where);
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) {
      throw new InvalidMessageError('option', name, `one of ${[...KNOWN].join(', ')}`, where);
    }
  }
  validateTopic(options.topic, where);
  if (typeof options.key !== 'function') validateKey(options.key, where);
  if (typeof options.tags !== 'function') validateTags(options.tags, where);
  if (typeof options.properties !== 'function') validateProperties(options.properties, where);
  if (options.body !== undefined && typeof options.body !== 'function') {
    throw new InvalidMessageError('body option', options.body, 'a function (args, result) => body', where);
  }
  if (options.checkImmunityMs !== undefined) validateDurationMs('checkImmunityMs', options.checkImmunityMs, where);
  if (options.delayMs !== undefined && options.deliverAt !== undefined) {
    throw new InvalidMessageError('delay', { delayMs: options.delayMs, deliverAt: options.deliverAt }, 'either delayMs or deliverAt, not both', where);
  }
  if (options.delayMs !== undefined && typeof options.delayMs !== 'function') validateDelayMs(options.delayMs, where);
  if (options.deliverAt !== undefined && typeof options.deliverAt !== 'function') validateDeliverAt(options.deliverAt, where);
  if (options.mandatory !== undefined && typeof options.mandatory !== 'boolean') {
    throw new InvalidMessageError('mandatory option', options.mandatory, 'true or false', where);
  }
  validateIsolationLevel(options.isolationLevel, where);
  if (options.instance !== undefined && !isInstanceName(options.instance)) {
    throw new InvalidMessageError('instance option', options.instance, INSTANCE_NAME_RULE, where);
  }
  return { ...options };
}
