import { decodeMarksRecord, encodeMarksRecord } from './marks-record.js';

describe('the marks record', () => {
  it('round-trips, keyed by slot', () => {
    const { key, value } = encodeMarksRecord({ slot: 3, sequence: 41, ids: ['a', 'b'] });
    expect(key.toString()).toBe('slot-3');
    expect(decodeMarksRecord(value, 'marks/3@7')).toEqual({ slot: 3, sequence: 41, ids: ['a', 'b'] });
  });

  it('refuses to write a slot or sequence that is not a whole number in range, naming it', () => {
    expect(() => encodeMarksRecord({ slot: -1, sequence: 1, ids: [] })).toThrow('slot must be a whole number ≥ 0, got -1');
    expect(() => encodeMarksRecord({ slot: 0, sequence: 0, ids: [] })).toThrow('sequence must be a whole number ≥ 1, got 0');
  });

  it('refuses to read what it does not know, naming where it is', () => {
    expect(() => decodeMarksRecord(Buffer.from('{"v":2,"slot":0,"sequence":1,"ids":[]}'), 'marks/0@5')).toThrow('The marks record at marks/0@5 is not one this version reads');
    expect(() => decodeMarksRecord(Buffer.from('not json'), 'marks/0@6')).toThrow('marks/0@6');
    expect(() => decodeMarksRecord(Buffer.from('{"v":1,"slot":0,"sequence":1,"ids":[1]}'), 'marks/0@7')).toThrow('marks/0@7');
    expect(() => decodeMarksRecord(null, 'marks/0@8')).toThrow('no value');
  });
});
