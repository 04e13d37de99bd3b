import type { BucketRow } from '../../store/bucket.store.js';
import { InFlight } from './in-flight.js';

const row = (seq: number, bucket: number) => ({ seq, bucket }) as unknown as BucketRow;

describe('InFlight', () => {
  it('leaves a message in flight for the claim that read it again, when the claim that let it go gives it back late', () => {
    const inFlight = new InFlight();
    const [a, b] = [{}, {}];
    inFlight.add(a, row(1, 7));
    inFlight.add(a, row(2, 7));
    inFlight.settle(a, [1, 2]); // a lets them go (a key held back behind a failure)
    inFlight.add(b, row(1, 7)); // the next claim reads them again
    inFlight.add(b, row(2, 7));
    inFlight.settle(a, [1, 2]); // a is finished: it gives back what it let go
    expect(inFlight.snapshot()).toEqual(new Set([1, 2]));
    expect(inFlight.hasBucket(7)).toBe(true);
    inFlight.settle(b, [1]);
    expect(inFlight.snapshot()).toEqual(new Set([2]));
    inFlight.settle(b, [2]);
    expect(inFlight.snapshot()).toEqual(new Set());
    expect(inFlight.hasBucket(7)).toBe(false);
  });

  it('counts a bucket in flight until the last of its messages is settled', () => {
    const inFlight = new InFlight();
    const claim = {};
    inFlight.add(claim, row(1, 3));
    inFlight.add(claim, row(2, 3));
    inFlight.add(claim, row(3, 4));
    inFlight.settle(claim, [1, 3, 99]);
    expect([inFlight.hasBucket(3), inFlight.hasBucket(4)]).toEqual([true, false]);
    inFlight.settle(claim, [2]);
    expect(inFlight.hasBucket(3)).toBe(false);
  });
});
