import { InvalidMessageError } from '../errors/invalid-message.error.js';
import {
  type MessageDelay,
  encodeBody,
  validateDelayMs,
  validateDeliverAt,
  validateDurationMs,
  validateKey,
  validateProperties,
  validateTags,
} from '../message/encode-message.js';
import { TransactionStatus } from '../message/transaction-status.enum.js';
import { uuidV7 } from '../message/uuid-v7.js';

/**
 * The half message of the running `@TransactionalMessage` method, from `currentHalfMessage()`.
 * Set the outcome of the local transaction and anything about the message that is only known
 * inside the method. Every setter validates at once, so a bad value fails at the line that set it.
 */
export interface HalfMessageHandle {
  /**
   * The id the message will have (`tm-message-id`), known from the start of the method: use it
   * as the idempotency key of a call to an external system, or store it with your business row.
   */
  readonly id: string;
  /** The topic from the decorator. */
  readonly topic: string;
  /** The outcome so far: COMMIT unless the method said otherwise. */
  readonly outcome: TransactionStatus;
  /** The message body (JSON-serialisable, or a Buffer/Uint8Array). Overrides the `body` option. */
  setBody(body: unknown): this;
  /** The message key. Overrides the `key` option. */
  setKey(key: string): this;
  /** The tags. Override the `tags` option. */
  setTags(tags: string | readonly string[]): this;
  /** Adds or replaces one user property. */
  setProperty(name: string, value: string): this;
  /** Check immunity of this message, in ms. Overrides the option. */
  setCheckImmunity(ms: number): this;
  /**
   * Delays the message: published no sooner than `ms` after it is stored (by the database's clock);
   * 0 removes a delay. Overrides the `delayMs`/`deliverAt` options.
   */
  setDelay(ms: number): this;
  /** Delays the message until `at` (by the database's clock). Overrides the `delayMs`/`deliverAt` options. */
  setDeliverAt(at: Date): this;
  /** COMMIT (the default): the message is committed with the transaction and delivered. */
  commit(): this;
  /** ROLLBACK: business writes still commit, the message is stored ROLLED_BACK and never delivered. */
  rollback(): this;
  /** UNKNOWN: the message stays HALF and the check handler is asked after its check immunity. */
  unknown(): this;
}

/** @internal */
export class HalfMessageDraft implements HalfMessageHandle {
  readonly id = uuidV7();
  outcome = TransactionStatus.COMMIT;
  body: { value: unknown } | undefined;
  key: string | undefined;
  tags: string[] | undefined;
  properties: Record<string, string> = {};
  checkImmunityMs: number | undefined;
  /** Set by the method: a delay, null (no delay, whatever the options say), or undefined (the options decide). */
  delay: MessageDelay | null | undefined;

  constructor(
    readonly topic: string,
    private readonly label: string,
  ) {}

  setBody(body: unknown): this {
    // Serialised now only to fail at this line (MessageBodyNotSerializableError); stored at the end.
    encodeBody(this.topic, body);
    this.body = { value: body };
    return this;
  }

  setKey(key: string): this {
    const valid = validateKey(key, this.label);
    if (valid === null) throw new InvalidMessageError('key', key, 'a non-empty string', this.label);
    this.key = valid;
    return this;
  }

  setTags(tags: string | readonly string[]): this {
    this.tags = validateTags(tags, this.label);
    return this;
  }

  setProperty(name: string, value: string): this {
    Object.assign(this.properties, validateProperties({ [name]: value }, this.label));
    return this;
  }

  setCheckImmunity(ms: number): this {
    this.checkImmunityMs = validateDurationMs('checkImmunityMs', ms, this.label);
    return this;
  }

  setDelay(ms: number): this {
    const delayMs = validateDelayMs(ms, this.label);
    this.delay = delayMs === 0 ? null : { delayMs };
    return this;
  }

  setDeliverAt(at: Date): this {
    this.delay = { at: validateDeliverAt(at, this.label) };
    return this;
  }

  commit(): this {
    this.outcome = TransactionStatus.COMMIT;
    return this;
  }

  rollback(): this {
    this.outcome = TransactionStatus.ROLLBACK;
    return this;
  }

  unknown(): this {
    this.outcome = TransactionStatus.UNKNOWN;
    return this;
  }
}
