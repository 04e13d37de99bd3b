import { retryDelayMs } from './backoff.js';

describe('retryDelayMs', () => {
  it('doubles from the initial delay, without jitter at the midpoint', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, 1_000, 300_000, () => 0.5))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  it('never exceeds the maximum, even with jitter or many attempts', () => {
    expect(retryDelayMs(9, 1_000, 300_000, () => 0.5)).toBe(256_000);
    expect(retryDelayMs(10, 1_000, 300_000, () => 0.999)).toBe(300_000);
    expect(retryDelayMs(10_000, 1_000, 300_000, () => 0)).toBe(240_000);
  });

  it('spreads by ±20 %', () => {
    expect(retryDelayMs(1, 1_000, 300_000, () => 0)).toBe(800);
    expect(retryDelayMs(1, 1_000, 300_000, () => 1)).toBe(1_200);
  });

  it('zero initial delay retries at once', () => {
    expect(retryDelayMs(3, 0, 0, () => 0.7)).toBe(0);
  });
});
