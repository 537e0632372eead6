/** Exponential backoff with jitter for reconnecting the learnhub stream. */

export interface IBackoffOptions {
  /** Delay before the first retry, ms. */
  initialMs: number;
  /** Upper bound of any delay, ms. */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
  /** Fraction of the delay randomised away (0: none, 0.5: between 50 % and 100 %). */
  jitter: number;
}

export const DEFAULT_BACKOFF: IBackoffOptions = {
  initialMs: 1000,
  maxMs: 30000,
  factor: 2,
  jitter: 0.3
};

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry).
 *
 * @param random a number in [0, 1), injectable for tests
 */
export function backoffDelay(
  attempt: number,
  options: IBackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random
): number {
  const n = Math.max(0, Math.floor(attempt));
  // Cap the exponent so that huge attempt counts never overflow to Infinity.
  const raw = options.initialMs * Math.pow(options.factor, Math.min(n, 30));
  const capped = Math.min(options.maxMs, raw);
  const jitter = Math.min(Math.max(options.jitter, 0), 1);
  return Math.round(capped * (1 - jitter * random()));
}
