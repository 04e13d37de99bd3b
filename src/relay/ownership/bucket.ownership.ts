import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { emitEvent } from '../../events/transactional-message-events.js';
import type { BackgroundWork } from '../../context/background-work.js';
import { settlesWithin } from '../../common/within.js';
import type { ResolvedOptions } from '../../options/transactional-message-options.interface.js';
import type { SlotTransactions } from '../../publisher/message-publisher.interface.js';
import type { BucketRow, BucketStore } from '../../store/bucket.store.js';
import { KEY_BUCKETS } from '../../store/dialects/bucket-tables.js';
import type { DeliveryClaim } from './delivery-ownership.js';
import type { MessageRow } from '../../store/message-row.js';
import { LOGGER_CONTEXT } from '../../common/constants.js';
import { rowsOf, type DeliveryOwnership } from './delivery-ownership.js';
import { InFlight } from './in-flight.js';
import { KeyBlocks } from './key-blocks.js';
import { RowLeaseUpgrade } from './row-lease-upgrade.js';

/** A claim of this ownership: its messages' buckets and the tokens they were held under when read. */
interface BucketClaim extends DeliveryClaim {
  messages: BucketRow[];
  tokens: ReadonlyMap<number, string>;
}

/**
 * @internal How relays share the work: each leases key buckets (its share of them: the
 * buckets divided by the relays alive, rebalanced at each maintenance) and publishes the committed
 * messages of its buckets in seq order. One key, one bucket, one owner: per-key order needs no
 * per-message lease, no head search and no contested-keys read.
 *
 * Per key, a message that failed holds back the later ones until it is due again: the relay keeps
 * the key blocked in memory from the failure on (a batch read before the failure drops the key's
 * later messages: `heldBack`), and every read leaves out blocked keys; the blocked keys of its
 * buckets are read from the database when it takes buckets and at each maintenance (a retry not
 * due, a DEAD message under `onDead: 'hold'`). The next batch is read while one is published; it
 * leaves out the messages in flight (claimed, not yet marked), never a key: a key's next messages
 * go out right after its previous ones, in order, since one relay publishes its batches one after
 * the other.
 *
 * This class keeps the bucket leases (take a share, renew, rebalance, give back); the held-back keys
 * are {@link KeyBlocks}', the messages in flight {@link InFlight}'s, what an upgrade from the
 * row-lease design leaves {@link RowLeaseUpgrade}'s.
 */
export class BucketOwnership implements DeliveryOwnership {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  /** bucket → the fencing token it is held under. */
  private readonly owned = new Map<number, string>();
  /** Owned buckets being given back (more than this relay's share): not read anymore. */
  private readonly leaving = new Set<number>();
  private readonly inFlight = new InFlight();
  private readonly blocks: KeyBlocks;
  private readonly upgrade: RowLeaseUpgrade;
  private maintenances = 0;
  private lastMaintenanceAt = -Infinity;
  /** When the leases of all owned buckets were last confirmed (performance.now()). */
  private confirmedAt = -Infinity;
  private maintaining: Promise<void> | undefined;
  private stopped = false;

  /** Buckets leased as one unit: 1, or a slot's with exactly-once delivery (`slots`). */
  private readonly perSlot: number;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly identity: string,
    private readonly runner: BackgroundWork,
    private readonly store: BucketStore,
    /** The publisher's slots when it delivers exactly once: buckets are then leased by whole slots. */
    private readonly slots?: SlotTransactions,
  ) {
    this.blocks = new KeyBlocks(options.relay.onDead === 'hold');
    this.upgrade = new RowLeaseUpgrade(identity, runner, store, this.logger);
    this.perSlot = slots?.bucketsPerSlot ?? 1;
    slots?.bind({
      holds: async (slot) => {
        await this.renewLeases();
        return this.bucketsOf(slot).every((b) => this.owned.has(b));
      },
      applyMarks: async (ids) => {
        await this.runner.autocommit('relay.mark', (m) => this.store.markDeliveredIds(m, ids));
      },
    });
  }

  /** The buckets of a slot (of a unit of lease). */
  private bucketsOf(slot: number): number[] {
    return Array.from({ length: this.perSlot }, (_, i) => slot * this.perSlot + i);
  }

  private get maintenanceIntervalMs(): number {
    return Math.max(10, Math.min(Math.floor(this.options.relay.leaseMs / 3), 5_000));
  }

  async claim(force: boolean): Promise<DeliveryClaim> {
    if (force || performance.now() - this.lastMaintenanceAt >= this.maintenanceIntervalMs) await this.maintain();
    const readable = new Set([...this.owned.keys()].filter((b) => !this.leaving.has(b)));
    const confirmedAt = this.confirmedAt;
    const blocked = this.blocks.now();
    const exclude = this.inFlight.snapshot();
    const messages = await this.runner.autocommit('relay.claim', (m) => this.store.read(m, readable, exclude, blocked, this.options.relay.batchSize));
    const claim: BucketClaim = { token: '', messages, confirmedAt, tokens: new Map(this.owned) };
    for (const row of messages) {
      this.blocks.read(row);
      this.inFlight.add(claim, row);
    }
    return claim;
  }

  heldBack(claim: DeliveryClaim): MessageRow[] {
    return this.blocks.heldBack(claim.messages);
  }

  letGo(claim: DeliveryClaim, rows: readonly MessageRow[]): void {
    // A message left in flight after it was let go would be left out of the next read, and the
    // later messages of its key read without it: out of order.
    this.settle(claim, rows.map((r) => r.seq));
  }

  /**
   * Renews the leases of every bucket this relay holds, and returns the seqs of `seqs` whose bucket
   * it still holds under the token it had when the claim was read.
   */
  async renew(claim: DeliveryClaim, seqs: number[]): Promise<Set<number>> {
    await this.renewLeases();
    const { tokens, messages } = claim as BucketClaim;
    const rows = new Map(messages.map((r) => [r.seq, r]));
    const still = new Set<number>();
    for (const seq of seqs) {
      const bucket = rows.get(seq)?.bucket;
      if (bucket !== undefined && this.owned.get(bucket) === tokens.get(bucket)) still.add(seq);
    }
    return still;
  }

  async markDelivered(claim: DeliveryClaim, seqs: number[]): Promise<number> {
    try {
      const rows = rowsOf(claim, seqs);
      const marked = await this.runner.autocommit('relay.mark', (m) => this.store.markDelivered(m, rows));
      this.slots?.delivered(rows.map((r) => r.id));
      return marked;
    } finally {
      this.settle(claim, seqs);
    }
  }

  async markFailed(claim: DeliveryClaim, row: MessageRow, error: string, dead: boolean, retryInMs: number): Promise<boolean> {
    const bucketRow = row as BucketRow;
    const token = this.owned.get(bucketRow.bucket);
    this.blocks.failing(row);
    try {
      if (token === undefined) return false;
      return await this.runner.autocommit('relay.fail', (m) => this.store.markFailed(m, bucketRow, token, error, dead, retryInMs));
    } finally {
      this.settle(claim, [row.seq]);
      this.blocks.failed(row, dead);
    }
  }

  async release(claim: DeliveryClaim, seqs: number[]): Promise<number> {
    // Nothing is leased per message: what was not published is read again.
    this.settle(claim, seqs);
    return seqs.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Bounded by shutdownTimeoutMs, as the rest of the shutdown: a maintenance stuck on the
    // database (a lock, a dead connection) must not hold the application's close().
    const deadline = performance.now() + this.options.relay.shutdownTimeoutMs;
    if (this.maintaining && !(await settlesWithin(this.maintaining, this.options.relay.shutdownTimeoutMs))) {
      this.logger.warn(`Shutdown: the key-bucket maintenance did not finish within shutdownTimeoutMs; its leases will run out`);
    }
    const held = new Map(this.owned);
    this.owned.clear();
    this.leaving.clear();
    if (held.size === 0 && this.lastMaintenanceAt === -Infinity) return; // never joined
    const giveBack = this.runner.autocommit('relay.buckets', async (m) => {
      await this.store.release(m, this.identity, held);
      await this.store.leave(m, this.identity);
    });
    giveBack.catch((error: unknown) => this.logger.warn(`Could not give back ${held.size} key bucket(s) on shutdown (their leases will run out): ${error}`));
    if (!(await settlesWithin(giveBack, deadline - performance.now()))) {
      this.logger.warn(`Shutdown: giving back ${held.size} key bucket(s) did not finish within shutdownTimeoutMs; their leases will run out`);
    }
  }

  /** Seqs no longer in flight (marked, failed or given back). */
  private settle(claim: DeliveryClaim, seqs: readonly number[]): void {
    this.inFlight.settle(claim, seqs);
  }

  private maintain(): Promise<void> {
    this.maintaining ??= this.doMaintain().finally(() => (this.maintaining = undefined));
    return this.maintaining;
  }

  /**
   * Announces this relay, renews its buckets, gives back what is over its share (once nothing of
   * those buckets is in flight) and takes free buckets up to its share; then re-reads the blocked
   * keys of its buckets.
   */
  private async doMaintain(): Promise<void> {
    if (this.stopped) return;
    const { leaseMs } = this.options.relay;
    this.lastMaintenanceAt = performance.now();
    const relays = await this.runner.autocommit('relay.buckets', (m) => this.store.heartbeat(m, this.identity, leaseMs));
    await this.renewLeases(false); // the heartbeat just announced this relay
    await this.upgrade.run();
    const share = Math.ceil(KEY_BUCKETS / this.perSlot / relays) * this.perSlot;
    if (this.owned.size - this.leaving.size > share) {
      // The highest buckets go first, so relays keep stable shares across rebalances.
      const excess = this.owned.size - this.leaving.size - share;
      const keep = [...this.owned.keys()].filter((b) => !this.leaving.has(b)).sort((a, b) => a - b);
      for (const bucket of keep.slice(keep.length - excess)) this.leaving.add(bucket);
    }
    const idle = new Map([...this.leaving].filter((b) => !this.inFlight.hasBucket(b)).map((b) => [b, this.owned.get(b)!]));
    if (idle.size > 0) {
      await this.runner.autocommit('relay.buckets', (m) => this.store.release(m, this.identity, idle));
      for (const bucket of idle.keys()) {
        this.owned.delete(bucket);
        this.leaving.delete(bucket);
      }
      this.logger.debug(`Gave back ${idle.size} key bucket(s): ${relays} relay(s) share them`);
    }
    let taken: number[] = [];
    const want = share - this.owned.size;
    if (want > 0 && this.leaving.size === 0) {
      const free = this.wholeSlots(await this.runner.autocommit('relay.buckets', (m) => this.store.free(m)));
      if (free.length > 0) {
        const pick = pickSome(free, want / this.perSlot).flatMap((slot) => this.bucketsOf(slot));
        const token = randomUUID();
        const startedAt = performance.now();
        taken = await this.runner.autocommit('relay.buckets', (m) => this.store.acquire(m, this.identity, token, pick, leaseMs));
        taken = await this.keepWholeSlots(taken, token);
        for (const bucket of taken) this.owned.set(bucket, token);
        if (taken.length > 0) this.logger.debug(`Took ${taken.length} key bucket(s): ${relays} relay(s) share them`);
        if (this.owned.size === taken.length) this.confirmedAt = startedAt;
        // Before any of their messages is read: the publisher recovers each slot before its next send.
        this.slots?.taken([...new Set(taken.map((b) => Math.floor(b / this.perSlot)))]);
      }
    }
    // Retries not due are known to this relay (its own failures); the database is asked for them
    // when it takes buckets (before their first read), and now and again in case a row changed
    // under it. DEAD messages are asked for at each maintenance under 'hold' (on their index).
    const full = taken.length > 0 || this.maintenances++ % 12 === 0;
    if (!full && this.options.relay.onDead !== 'hold') return;
    const since = this.blocks.mark();
    const found = await this.runner.autocommit('relay.claim', (m) => this.store.blockedKeys(m, new Set(this.owned.keys()), full));
    this.blocks.refresh(since, { notDue: full ? found.notDue : undefined, dead: found.dead });
  }

  /** The slots (units of lease) all of whose buckets are among `free`. */
  private wholeSlots(free: readonly number[]): number[] {
    if (this.perSlot === 1) return [...free];
    const count = new Map<number, number>();
    for (const bucket of free) count.set(Math.floor(bucket / this.perSlot), (count.get(Math.floor(bucket / this.perSlot)) ?? 0) + 1);
    return [...count].filter(([, n]) => n === this.perSlot).map(([slot]) => slot);
  }

  /**
   * Of the buckets just taken under `token`, those of slots taken whole; the others (another relay
   * took part of their slot at the same moment) are given back at once.
   */
  private async keepWholeSlots(taken: number[], token: string): Promise<number[]> {
    if (this.perSlot === 1) return taken;
    const whole = new Set(this.wholeSlots(taken));
    const partial = taken.filter((b) => !whole.has(Math.floor(b / this.perSlot)));
    if (partial.length > 0) {
      await this.runner.autocommit('relay.buckets', (m) => this.store.release(m, this.identity, new Map(partial.map((b) => [b, token]))));
    }
    return taken.filter((b) => whole.has(Math.floor(b / this.perSlot)));
  }

  /**
   * Renews every owned bucket's lease (and, with `announce`, this relay's announcement); buckets
   * whose lease ran out are forgotten.
   */
  private async renewLeases(announce = true): Promise<void> {
    if (this.owned.size === 0) return;
    const startedAt = performance.now();
    const tokens = new Set(this.owned.values());
    const held = await this.runner.autocommit('relay.renew', (m) => this.store.renew(m, this.identity, tokens, this.options.relay.leaseMs, announce));
    const lost = [...this.owned.keys()].filter((b) => held.get(b) !== this.owned.get(b));
    for (const bucket of lost) {
      this.owned.delete(bucket);
      this.leaving.delete(bucket);
    }
    // A slot is held whole or not at all: the rest of a slot that lost a bucket is given back (once
    // nothing of it is in flight), so that another relay can take the slot.
    for (const bucket of lost) {
      for (const other of this.bucketsOf(Math.floor(bucket / this.perSlot))) if (this.owned.has(other)) this.leaving.add(other);
    }
    if (lost.length > 0) {
      emitEvent('lease.lost', () => ({ instance: this.options.name, producerGroup: this.options.producerGroup, count: lost.length, during: 'renewal' }));
      this.logger.warn(`Lost ${lost.length} key bucket(s) (their lease ran out before this relay renewed it; another relay may hold them now)`);
    }
    this.confirmedAt = startedAt;
  }
}

/** Up to `n` of `items`, spread at random (relays taking buckets at once rarely want the same ones). */
function pickSome(items: readonly number[], n: number): number[] {
  if (items.length <= n) return [...items];
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n).sort((a, b) => a - b);
}
