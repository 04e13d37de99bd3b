/**
 * @internal Waits for `work` at most `ms`: resolves `true` when it settled in time (its outcome is
 * ignored), `false` when the time ran out (it goes on unobserved; its rejection is handled).
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, Math.max(0, Math.min(ms, 2 ** 31 - 1)), false)));
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
