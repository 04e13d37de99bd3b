import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { BackgroundWork } from '../../lifecycle/background-work.js';
import type { ResolvedOptions } from '../../options/transactional-message-options.interface.js';
import type { BucketStore } from '../../store/bucket.store.js';
import type { DeliveryClaim, DeliveryStore } from '../../store/delivery.store.js';
import type { MessageRow } from '../../store/message-row.js';
import type { SchemaCheck } from '../../store/schema-check.service.js';
import { LOGGER_CONTEXT } from '../../transactional-message.constants.js';
import { rowsOf, type DeliveryOwnership } from './delivery-ownership.js';

/**
 * @internal `relay.ownership: 'rows'`: each batch leases its messages row by row under a token
 * (see DeliveryStore); a key's lowest-seq committed message starts a claim.
 */
export class RowLeaseOwnership implements DeliveryOwnership {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private lastFullScanAt = -Infinity;
  /** Relays on `'buckets'` were alive at the last claim: this relay holds off. */
  private holdingOff = false;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly identity: string,
    private readonly runner: BackgroundWork,
    private readonly store: DeliveryStore,
    /** `<table>_relay`, where relays on `'buckets'` announce themselves (when the fourth migration ran). */
    private readonly buckets: BucketStore,
    private readonly schema: SchemaCheck,
  ) {}

  /**
   * `exhaustive`: look past the oldest messages when they yield nothing (not for a prefetch), at
   * most once per poll interval (and four times a second): when another relay holds every key
   * among the oldest messages, walking the whole queue on every wake-up only loads the database
   * (the fault soak's idle relays did, and slowed the one that held the keys).
   */
  async claim(exhaustive: boolean, force: boolean): Promise<DeliveryClaim> {
    if (await this.bucketRelaysAlive()) return { token: '', messages: [] };
    const { batchSize, leaseMs, pollIntervalMs } = this.options.relay;
    const scanAll = exhaustive && (force || performance.now() - this.lastFullScanAt >= Math.max(pollIntervalMs, 250));
    const claim = await this.store.claimWith(this.runner, 'relay.claim', this.identity, randomUUID(), batchSize, leaseMs, scanAll);
    if (claim.scannedAll) this.lastFullScanAt = performance.now();
    if (claim.messages.some((m) => m.key !== null)) {
      // Another relay claiming at the same moment may hold part of one of our keys: leave such keys.
      let contested: Set<string>;
      try {
        contested = await this.runner.autocommit('relay.contested', (m) => this.store.contestedKeys(m, claim));
      } catch (error) {
        // The claim is committed: give its messages back now, or they would wait out the whole
        // lease (the release is best effort; the lease still ends by itself).
        await this.runner
          .autocommit('relay.release', (m) => this.store.release(m, claim.token, claim.messages.map((r) => r.seq)))
          .catch(() => undefined);
        throw error;
      }
      if (contested.size > 0) {
        const drop = claim.messages.filter((m) => m.key !== null && contested.has(m.key));
        await this.runner.autocommit('relay.release', (m) => this.store.release(m, claim.token, drop.map((r) => r.seq)));
        claim.messages = claim.messages.filter((m) => !drop.includes(m));
        this.logger.debug(`Left ${drop.length} message(s) of ${contested.size} key(s) another relay is publishing`);
      }
    }
    return claim;
  }

  /**
   * All relays of one table must use the same ownership: a relay on `'buckets'` does not see row
   * leases, and this one does not see bucket leases, so both would publish the same keys. While a
   * relay on `'buckets'` announces itself, this one claims nothing (the messages wait for that
   * relay; nothing is lost), and says so once. Asked before every claim, so a relay on
   * `'buckets'` that starts finds this one's leases at most one claim later (it waits for them to end).
   */
  private async bucketRelaysAlive(): Promise<boolean> {
    if (!this.schema.keyBucketTables) return false;
    const alive = await this.runner.autocommit('relay.claim', (m) => this.buckets.liveRelays(m));
    if (alive > 0 && !this.holdingOff) {
      this.logger.error(
        `Relay ${this.identity} on relay.ownership 'rows' holds off: ${alive} relay(s) on 'buckets' announce themselves in ` +
          `${this.buckets.relayTable}. All relays of one table must use the same ownership: set relay.ownership: 'buckets' on ` +
          `this instance, or stop the relays on 'buckets' (this relay goes on once their announcements are gone). No message is lost meanwhile.`,
      );
    } else if (alive === 0 && this.holdingOff) {
      this.logger.log(`Relay ${this.identity} on relay.ownership 'rows' goes on: no relay on 'buckets' is alive anymore`);
    }
    this.holdingOff = alive > 0;
    return this.holdingOff;
  }

  heldBack(): MessageRow[] {
    // A claimed key is this relay's until its messages are marked or released.
    return [];
  }

  letGo(): void {
    // They stay leased until released: no other relay may take their keys meanwhile.
  }

  renew(claim: DeliveryClaim, seqs: number[]): Promise<Set<number>> {
    return this.runner.autocommit('relay.renew', (m) => this.store.renew(m, claim, seqs, this.options.relay.leaseMs));
  }

  markDelivered(claim: DeliveryClaim, seqs: number[]): Promise<number> {
    return this.runner.autocommit('relay.mark', (m) => this.store.markDelivered(m, claim.token, rowsOf(claim, seqs)));
  }

  markFailed(claim: DeliveryClaim, row: MessageRow, error: string, dead: boolean, retryInMs: number): Promise<boolean> {
    return this.runner.autocommit('relay.fail', (m) => this.store.markFailed(m, claim.token, row.seq, error, dead, retryInMs));
  }

  release(claim: DeliveryClaim, seqs: number[]): Promise<number> {
    return this.runner.autocommit('relay.release', (m) => this.store.release(m, claim.token, seqs));
  }

  async stop(): Promise<void> {
    // Leases end by themselves; the relay released what it did not publish.
  }
}
