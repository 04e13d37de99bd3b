/** @internal Retry delay of a message that failed `attempts` times (1 after the first failure). */
export function retryDelayMs(attempts: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponential = initialMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40);
  // ±20 % jitter, so messages that failed together do not all come back together.
  const jittered = Math.min(exponential, maxMs) * (0.8 + 0.4 * random());
  return Math.round(Math.min(jittered, maxMs));
}
