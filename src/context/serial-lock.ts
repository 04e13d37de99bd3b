/**
 * @internal A FIFO mutex. SQLite gives a TypeORM DataSource a single connection, and two
 * transactions on it at once fail ("cannot start a transaction within a transaction"), so the
 * library runs its own SQLite transactions one after another.
 */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

const locks = new WeakMap<object, SerialLock>();

/** @internal The lock shared by everything of the library that opens transactions on `owner`. */
export function serialLockFor(owner: object): SerialLock {
  let lock = locks.get(owner);
  if (!lock) locks.set(owner, (lock = new SerialLock()));
  return lock;
}
