import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { LOGGER_CONTEXT } from '../../common/constants.js';
import { InvalidModuleOptionsError } from '../../errors/invalid-module-options.error.js';
import { OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
import { KEY_BUCKETS } from '../../store/dialects/bucket-tables.js';
import { keyBucket } from '../../store/key-bucket.js';
import type { MessagePublisher, OutgoingMessage, PublishFailure, SlotOwner, SlotTransactions } from '../message-publisher.interface.js';
import { classifyKafkaError } from './classify-kafka-error.js';
import { classifyPlatformaticKafkaError } from './classify-platformatic-error.js';
import { readLastCommitted } from './committed-records.js';
import type { KafkaClientName, KafkaOptions } from './kafka-options.interface.js';
import { decodeMarksRecord, encodeMarksRecord } from './marks-record.js';
import { loadPlatformaticKafka, platformaticProducerOptions } from './platformatic.publisher.js';
import { createTransactionalKafkaProducer, isProducerFenced, type TransactionalKafkaProducer, type TransactionalRecord } from './transactional-producer.js';

/** @internal Key buckets per slot with `kafka.exactlyOnce`: 8 slots of 32 buckets. */
export const BUCKETS_PER_SLOT = 32;
/** @internal Slots of a message table with `kafka.exactlyOnce` (the marks topic has one partition per slot). */
export const SLOTS = KEY_BUCKETS / BUCKETS_PER_SLOT;

/** @internal Where exactly-once delivery keeps its state in Kafka: resolved from `kafka.exactlyOnce` and the module. */
export interface ExactlyOnceScope {
  /** Slot n's producer has the transactional id `<transactionalIdPrefix>.tm-slot-<n>`. */
  transactionalIdPrefix: string;
  /** The marks topic: one partition per slot, compacted. */
  marksTopic: string;
}

/** Kafka's rule for topic names. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/**
 * @internal The names `kafka.exactlyOnce` uses (undefined when it is off), checked now: a bad value
 * is an error naming the option. `defaults`: the module's producer group and table; without them
 * (`new KafkaPublisher()`), both names must be given.
 */
export function resolveExactlyOnceScope(
  value: KafkaOptions['exactlyOnce'],
  defaults: { producerGroup: string; tableName: string } | undefined,
): ExactlyOnceScope | undefined {
  if (value === undefined || value === false) return undefined;
  const fixIn = defaults ? undefined : 'the options of new KafkaPublisher()';
  const module = defaults ? undefined : 'KafkaPublisher';
  if (value !== true && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new InvalidModuleOptionsError('kafka.exactlyOnce', value, 'true, false, or { transactionalIdPrefix?, marksTopic? }', module, fixIn);
  }
  const given = value === true ? {} : value;
  for (const name of Object.keys(given)) {
    if (name !== 'transactionalIdPrefix' && name !== 'marksTopic') {
      throw new InvalidModuleOptionsError(`kafka.exactlyOnce.${name}`, (given as Record<string, unknown>)[name], 'no such option (transactionalIdPrefix, marksTopic)', module, fixIn);
    }
  }
  const base = defaults ? `${defaults.producerGroup}.${defaults.tableName}` : undefined;
  const transactionalIdPrefix = given.transactionalIdPrefix ?? base;
  const marksTopic = given.marksTopic ?? (base === undefined ? undefined : `${base}.tm-marks`);
  if (typeof transactionalIdPrefix !== 'string' || transactionalIdPrefix.length === 0 || transactionalIdPrefix.length > 200) {
    throw new InvalidModuleOptionsError(
      'kafka.exactlyOnce.transactionalIdPrefix',
      given.transactionalIdPrefix,
      'a non-empty string of at most 200 characters, the same in every instance that shares the message table (with new KafkaPublisher() it has no default)',
      module,
      fixIn,
    );
  }
  if (typeof marksTopic !== 'string' || !TOPIC_NAME.test(marksTopic)) {
    const why = given.marksTopic === undefined && marksTopic !== undefined ? ` (the default, from the producer group and table name, is not a valid topic name)` : '';
    throw new InvalidModuleOptionsError(
      'kafka.exactlyOnce.marksTopic',
      marksTopic,
      `a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)${why}, the same in every instance that shares the message table`,
      module,
      fixIn,
    );
  }
  return { transactionalIdPrefix, marksTopic };
}

/** The slot is no longer this relay's (found after its producer fenced the previous holder). */
class SlotLostError extends Error {
  constructor(readonly slot: number) {
    super(`slot ${slot} (key buckets ${slot * BUCKETS_PER_SLOT}-${slot * BUCKETS_PER_SLOT + BUCKETS_PER_SLOT - 1}) is no longer this relay's; another relay publishes it`);
  }
}

/**
 * A slot's transactional producer could not start: Kafka refused or could not serve transactions.
 * Classified by its cause (an outage, or the configuration: an ACL); the message says what the
 * cluster must allow.
 */
class TransactionsUnavailableError extends Error {
  constructor(
    transactionalId: string,
    override readonly cause: unknown,
  ) {
    super(
      `Kafka did not start the transactions of ${transactionalId} (${(cause as Error)?.message ?? cause}). kafka.exactlyOnce needs a cluster ` +
        `that serves transactions: the __transaction_state topic must exist or be creatable (transaction.state.log.replication.factor, ` +
        `default 3, at most the brokers; transaction.state.log.min.isr in sync), and with ACLs the producer needs WRITE and DESCRIBE on its ` +
        `transactional ids (prefix of kafka.exactlyOnce.transactionalIdPrefix); docs/exactly-once.md`,
    );
  }
}

/** The marks topic cannot be used as it is: nothing is published until it is fixed. */
class MarksTopicError extends Error {}

/** One slot's state in this relay. */
interface Slot {
  producer: TransactionalKafkaProducer | undefined;
  /** Recovered since this relay took the slot, and no send failed since. */
  clean: boolean;
  /** The sequence of the slot's last committed marks record. */
  sequence: number;
  /** Ids Kafka committed in this slot that the database is not known to have marked (carried in every marks record). */
  unmarked: Set<string>;
  /**
   * Ids the last recovery found committed and had marked: not carried anymore, but a claim read
   * before the recovery may still hold them, so they are not sent either.
   */
  recovered: Set<string>;
  /** The slot's sends and recoveries, one at a time. */
  queue: Promise<unknown>;
}

/**
 * @internal The Kafka publisher with `kafka.exactlyOnce` (docs/exactly-once.md): read_committed
 * consumers see each committed message once, also when relays are killed or frozen at any point.
 *
 * The relay leases key buckets in *slots* (32 buckets, 8 slots); each slot has one transactional
 * producer (`<prefix>.tm-slot-<n>`). Each send is one Kafka transaction per slot holding the
 * slot's records and one *marks record* (marks topic, partition = slot): the ids Kafka committed
 * in this slot that the database is not known to have marked, this transaction's included. When
 * the relay takes a slot, or after any failed send in it, the slot is *recovered* before its next
 * send: its producer takes the transactional id over (which aborts the previous holder's open
 * transaction and fences its later ones), the relay confirms in the database that it still holds
 * the slot (so it never fences a newer owner for long: that owner's next send fails, and it
 * recovers after confirming its own lease), then reads the slot's last committed marks record and
 * has its ids marked delivered. A message among those ids (or committed by this relay and not
 * marked yet) is never sent again: the publish reports it accepted.
 */
export class ExactlyOnceKafkaPublisher implements MessagePublisher, SlotTransactions {
  readonly bucketsPerSlot = BUCKETS_PER_SLOT;
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private owner: SlotOwner | undefined;
  private readonly slots = new Map<number, Slot>();
  private clientName: KafkaClientName | undefined;
  private ready: Promise<import('@platformatic/kafka').Consumer<Buffer, Buffer, Buffer, Buffer>> | undefined;
  private reader: import('@platformatic/kafka').Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private closed = false;

  constructor(
    private readonly options: KafkaOptions,
    private readonly client: () => Promise<KafkaClientName>,
    readonly scope: ExactlyOnceScope,
    private readonly defaultClientId: string,
  ) {}

  /** This publisher is its own slot transactions (the relay's ownership binds to it). */
  get slotTransactions(): SlotTransactions {
    return this;
  }

  bind(owner: SlotOwner): void {
    this.owner = owner;
  }

  taken(slots: readonly number[]): void {
    for (const slot of slots) this.slot(slot).clean = false;
  }

  delivered(ids: readonly string[]): void {
    for (const slot of this.slots.values()) {
      if (slot.unmarked.size === 0 && slot.recovered.size === 0) continue;
      for (const id of ids) {
        slot.unmarked.delete(id);
        slot.recovered.delete(id);
      }
    }
  }

  /** The marks topic exists with a partition per slot, and its reader is connected. */
  async connect(): Promise<void> {
    await this.marksReader();
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const bySlot = new Map<number, OutgoingMessage[]>();
    for (const message of messages) {
      const slot = Math.floor(keyBucket(message.key, message.id) / BUCKETS_PER_SLOT);
      let list = bySlot.get(slot);
      if (!list) bySlot.set(slot, (list = []));
      list.push(message);
    }
    const accepted = new Set<string>();
    let failure: { error: unknown } | undefined;
    // Slots are independent (no key is in two): their transactions run side by side.
    await Promise.all(
      [...bySlot].map(([slot, list]) =>
        this.inSlot(slot, () => this.sendInSlot(slot, list)).then(
          () => list.forEach((m) => accepted.add(m.id)),
          (error: unknown) => void (failure ??= { error }),
        ),
      ),
    );
    if (!failure) return;
    if (accepted.size > 0) throw new PartialPublishError(accepted, failure.error, messages.length);
    throw failure.error;
  }

  classify(error: unknown): PublishFailure {
    const cause = error instanceof PartialPublishError ? error.cause : error;
    // Not the messages' fault whatever it is: the configuration (an ACL), or an outage.
    if (cause instanceof TransactionsUnavailableError) return this.classifyClient(cause.cause).kind === 'config' ? { kind: 'config' } : { kind: 'transport' };
    if (cause instanceof SlotLostError || isProducerFenced(cause)) return { kind: 'transport' };
    if (cause instanceof MarksTopicError || cause instanceof OptionalDependencyMissingError) return { kind: 'config' };
    return this.classifyClient(cause);
  }

  private classifyClient(error: unknown): PublishFailure {
    return this.clientName === 'kafkajs' ? classifyKafkaError(error) : classifyPlatformaticKafkaError(error);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.slots.values()].map(async (slot) => {
        await slot.queue;
        await slot.producer?.close();
        slot.producer = undefined;
      }),
    );
    const reader = this.reader ?? (await this.ready?.catch(() => undefined));
    this.reader = undefined;
    this.ready = undefined;
    await reader?.close(true).catch(() => undefined);
  }

  private slot(n: number): Slot {
    let slot = this.slots.get(n);
    if (!slot) this.slots.set(n, (slot = { producer: undefined, clean: false, sequence: 0, unmarked: new Set(), recovered: new Set(), queue: Promise.resolve() }));
    return slot;
  }

  /** Runs `work` after the slot's sends and recoveries before it. */
  private inSlot<T>(n: number, work: () => Promise<T>): Promise<T> {
    const slot = this.slot(n);
    const run = slot.queue.then(work, work);
    slot.queue = run.catch(() => undefined);
    return run;
  }

  /** One transaction: the slot's records not committed yet, and the marks record. */
  private async sendInSlot(n: number, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new Error('The Kafka publisher is closed');
    const slot = this.slot(n);
    if (!slot.clean || !slot.producer) await this.recover(n, slot);
    // Committed by an earlier transaction (whose mark did not reach the database, or that the
    // recovery found): not again.
    const fresh = messages.filter((m) => !slot.unmarked.has(m.id) && !slot.recovered.has(m.id));
    if (fresh.length === 0) return;
    const ids = [...slot.unmarked, ...fresh.map((m) => m.id)];
    const marks = encodeMarksRecord({ slot: n, sequence: slot.sequence + 1, ids });
    const records: TransactionalRecord[] = fresh.map((m) => ({
      topic: m.topic,
      ...(m.key !== null ? { key: Buffer.from(m.key) } : {}),
      value: m.value,
      headers: { ...m.headers },
      timestamp: m.timestamp.getTime(),
    }));
    records.push({ topic: this.scope.marksTopic, partition: n, key: marks.key, value: marks.value });
    try {
      await slot.producer!.send(records);
    } catch (error) {
      // Committed or not, only a recovery tells (a commit whose answer was lost is committed).
      slot.clean = false;
      throw error;
    }
    slot.sequence++;
    for (const m of fresh) slot.unmarked.add(m.id);
  }

  /** Fence, confirm the slot is still this relay's, read what Kafka committed, have it marked. */
  private async recover(n: number, slot: Slot): Promise<void> {
    const owner = this.owner;
    if (!owner) throw new Error('The exactly-once publisher is not bound to a relay');
    const reader = await this.marksReader();
    await slot.producer?.close();
    slot.producer = undefined;
    const transactionalId = `${this.scope.transactionalIdPrefix}.tm-slot-${n}`;
    const producer = createTransactionalKafkaProducer(await this.chosenClient(), this.options, transactionalId, this.defaultClientId);
    try {
      await producer.start();
    } catch (error) {
      throw new TransactionsUnavailableError(transactionalId, error);
    }
    try {
      if (!(await owner.holds(n))) throw new SlotLostError(n);
      const last = await readLastCommitted(reader, this.scope.marksTopic, n);
      let marks = { sequence: 0, ids: [] as string[] };
      if (last) {
        try {
          marks = decodeMarksRecord(last.value, `${this.scope.marksTopic}/${n} offset ${last.offset}`);
        } catch (error) {
          throw new MarksTopicError(`${(error as Error).message}. The marks topic must hold only this library's marks records`);
        }
      }
      slot.sequence = marks.sequence;
      slot.unmarked = new Set(marks.ids);
      slot.recovered = new Set();
      if (marks.ids.length > 0) {
        await owner.applyMarks(marks.ids);
        slot.unmarked = new Set();
        slot.recovered = new Set(marks.ids);
        this.logger.log(`Slot ${n}: marked ${marks.ids.length} message(s) delivered that Kafka had committed before the database knew (not published again)`);
      }
    } catch (error) {
      await producer.close();
      throw error;
    }
    slot.producer = producer;
    slot.clean = true;
  }

  private async chosenClient(): Promise<KafkaClientName> {
    this.clientName ??= await this.client();
    return this.clientName;
  }

  /**
   * The marks topic (created with a partition per slot, compacted, when it does not exist) and the
   * consumer that reads it: @platformatic/kafka's fetch with the library's own decision of what is
   * committed (its read_committed filter may return aborted records; docs/exactly-once.md), on
   * either client.
   */
  private marksReader(): Promise<import('@platformatic/kafka').Consumer<Buffer, Buffer, Buffer, Buffer>> {
    this.ready ??= this.prepare().then(
      (reader) => (this.reader = reader),
      (error: unknown) => {
        this.ready = undefined;
        throw error;
      },
    );
    return this.ready;
  }

  private async prepare(): Promise<import('@platformatic/kafka').Consumer<Buffer, Buffer, Buffer, Buffer>> {
    await this.chosenClient();
    let kafka: typeof import('@platformatic/kafka');
    try {
      kafka = await loadPlatformaticKafka();
    } catch (error) {
      if (error instanceof OptionalDependencyMissingError && !error.installed) {
        throw new OptionalDependencyMissingError('@platformatic/kafka', 'kafka.exactlyOnce (it reads the marks topic with @platformatic/kafka, whichever client publishes)', error.cause);
      }
      throw error;
    }
    const base = await platformaticProducerOptions(this.options, this.defaultClientId);
    const connection = {
      clientId: base.clientId,
      bootstrapBrokers: base.bootstrapBrokers,
      connectTimeout: base.connectTimeout,
      requestTimeout: base.requestTimeout,
      retries: 3,
      ...(base.tls ? { tls: base.tls } : {}),
      ...(base.sasl ? { sasl: base.sasl } : {}),
    };
    const admin = new kafka.Admin(connection);
    try {
      await this.ensureMarksTopic(admin);
    } finally {
      await admin.close().catch(() => undefined);
    }
    return new kafka.Consumer<Buffer, Buffer, Buffer, Buffer>({ ...connection, groupId: `tm-marks-reader-${randomBytes(6).toString('hex')}` });
  }

  private async ensureMarksTopic(admin: import('@platformatic/kafka').Admin): Promise<void> {
    const topic = this.scope.marksTopic;
    if (!(await admin.listTopics()).includes(topic)) {
      try {
        await admin.createTopics({ topics: [topic], partitions: SLOTS, configs: [{ name: 'cleanup.policy', value: 'compact' }] });
        this.logger.log(`Created the marks topic ${topic} (${SLOTS} partitions, compacted) for kafka.exactlyOnce`);
      } catch (error) {
        if (!JSON.stringify(error, Object.getOwnPropertyNames(error)).includes('TOPIC_ALREADY_EXISTS') && !String((error as Error)?.message).includes('already exists')) throw error;
      }
    }
    const metadata = await admin.metadata({ topics: [topic] });
    const partitions = metadata.topics.get(topic)?.partitionsCount ?? 0;
    if (partitions < SLOTS) {
      throw new MarksTopicError(
        `The marks topic ${topic} has ${partitions} partition(s); kafka.exactlyOnce needs ${SLOTS} (one per slot). ` +
          `Name another one with kafka.exactlyOnce.marksTopic (or delete this one while no relay runs: a message Kafka committed and the database did not mark would then be published once more)`,
      );
    }
  }
}
