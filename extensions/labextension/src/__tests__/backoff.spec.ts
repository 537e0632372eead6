import { backoffDelay, DEFAULT_BACKOFF } from '../logic/backoff';

describe('reconnect backoff', () => {
  const noJitter = { ...DEFAULT_BACKOFF, jitter: 0 };

  it('doubles from the initial delay up to the maximum', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map(n => backoffDelay(n, noJitter))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000
    ]);
  });

  it('never overflows for huge attempt counts', () => {
    expect(backoffDelay(10000, noJitter)).toBe(30000);
  });

  it('randomises down by at most the jitter fraction', () => {
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 0)).toBe(4000);
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 0.999999)).toBe(Math.round(4000 * (1 - 0.3 * 0.999999)));
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(3, DEFAULT_BACKOFF);
      expect(d).toBeGreaterThanOrEqual(8000 * 0.7 - 1);
      expect(d).toBeLessThanOrEqual(8000);
    }
  });

  it('treats negative attempts as the first', () => {
    expect(backoffDelay(-3, noJitter)).toBe(1000);
  });
});
