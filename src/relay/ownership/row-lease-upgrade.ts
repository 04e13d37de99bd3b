import type { Logger } from '@nestjs/common';
import type { BackgroundWork } from '../../context/background-work.js';
import type { BucketStore } from '../../store/bucket.store.js';

/** Messages written without a bucket given theirs per statement, and statements per maintenance. */
const FILL_BATCH = 1_000;
const FILL_BATCHES_PER_MAINTENANCE = 10;

/**
 * @internal What an upgrade from the row-lease design (an earlier version) leaves, seen to at each
 * maintenance: messages written without a bucket by instances of the earlier version (given
 * theirs, in batches, so that reads are not filled with other relays' keys), and committed
 * messages such a relay still holds under a lease (reads find nothing while any is live: said
 * once, and once more when they are gone).
 */
export class RowLeaseUpgrade {
  private leasesSeen = false;

  constructor(
    private readonly identity: string,
    private readonly runner: BackgroundWork,
    private readonly store: BucketStore,
    private readonly logger: Logger,
  ) {}

  async run(): Promise<void> {
    for (let batch = 0; batch < FILL_BATCHES_PER_MAINTENANCE; batch++) {
      const filled = await this.runner.autocommit('relay.buckets', (m) => this.store.fillBuckets(m, FILL_BATCH));
      if (filled < FILL_BATCH) break;
    }
    const leased = await this.runner.autocommit('relay.buckets', (m) => this.store.rowLeases(m));
    if (leased > 0 && !this.leasesSeen) {
      this.logger.warn(
        `Relay ${this.identity} waits: relays of the row-lease design (an earlier version of this library) hold ${leased} committed ` +
          `message(s) under a lease, and two designs must never publish at once. It delivers once those leases end (at most their ` +
          `relay.leaseMs); stop the relays of the earlier version (docs/upgrading.md).`,
      );
    } else if (leased === 0 && this.leasesSeen) {
      this.logger.log(`Relay ${this.identity} goes on: no lease of the row-lease design is left`);
    }
    this.leasesSeen = leased > 0;
  }
}
