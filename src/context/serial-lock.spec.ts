import { SerialLock } from './serial-lock.js';

describe('SerialLock', () => {
  it('runs work one at a time, in arrival order, also after a failure', async () => {
    const lock = new SerialLock();
    const events: string[] = [];
    const step = (name: string, fail = false) =>
      lock.run(async () => {
        events.push(`${name}:start`);
        await new Promise((resolve) => setImmediate(resolve));
        events.push(`${name}:end`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([step('a'), step('b', true), step('c')]);
    expect(events).toEqual(['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
