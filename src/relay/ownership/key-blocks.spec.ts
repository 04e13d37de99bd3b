import type { MessageRow } from '../../store/message-row.js';
import { KeyBlocks } from './key-blocks.js';

const row = (seq: number, key: string | null) => ({ seq, key }) as unknown as MessageRow;

describe('KeyBlocks', () => {
  it('holds a key back from a failure being written on, and after it was written, until that message is read again', () => {
    const blocks = new KeyBlocks(false);
    blocks.failing(row(5, 'a'));
    expect(blocks.now()).toEqual(new Map([['a', 5]]));
    expect(blocks.heldBack([row(4, 'a'), row(6, 'a'), row(7, 'b'), row(8, null)]).map((r) => r.seq)).toEqual([6]);
    blocks.failed(row(5, 'a'), false);
    expect(blocks.now()).toEqual(new Map([['a', 5]]));
    // The retry is due and read: its key goes on behind it.
    blocks.read(row(5, 'a'));
    expect(blocks.now()).toEqual(new Map());
  });

  it("a DEAD message holds its key under onDead 'hold' only", () => {
    const hold = new KeyBlocks(true);
    const skip = new KeyBlocks(false);
    for (const blocks of [hold, skip]) {
      blocks.failing(row(3, 'k'));
      blocks.failed(row(3, 'k'), true);
    }
    expect(hold.now()).toEqual(new Map([['k', 3]]));
    expect(skip.now()).toEqual(new Map());
  });

  it("a re-read from the database replaces what it knew, unless a failure was written meanwhile: then it merges (never one block too few)", () => {
    const blocks = new KeyBlocks(false);
    blocks.failing(row(9, 'x'));
    blocks.failed(row(9, 'x'), false);
    // Nothing written during the read: the database's answer is the truth (x's retry was made due by an operator).
    blocks.refresh(blocks.mark(), { notDue: new Map([['y', 2]]) });
    expect(blocks.now()).toEqual(new Map([['y', 2]]));
    // A failure written while the read ran: merged.
    const since = blocks.mark();
    blocks.failing(row(4, 'z'));
    blocks.failed(row(4, 'z'), false);
    blocks.refresh(since, { notDue: new Map([['w', 1]]) });
    expect(blocks.now()).toEqual(new Map([['y', 2], ['z', 4], ['w', 1]]));
  });
});
