/**
 * One backoff for everything that waits before trying again (a failed attempt's retry, a
 * reconnect, a restarted worker, a publish that did not go through): exponential, and with full
 * jitter, so a burst of failures does not try again in lockstep.
 *
 * @module
 */

/** Bounds of a backoff, in milliseconds. */
export interface BackoffBounds {
  minMs: number;
  maxMs: number;
}

/**
 * The wait before try `n + 1` after `n` failures (`n` from 1): uniform between `minMs` and
 * `min(maxMs, minMs * 2^(n - 1))`, so the first wait is `minMs` and the spread doubles from
 * there. `random` picks the point in that range; {@linkcode NO_JITTER} always takes its top.
 *
 * @example
 * ```ts
 * backoffMs(1, { minMs: 1000, maxMs: 600_000 }); // 1000
 * backoffMs(4, { minMs: 1000, maxMs: 600_000 }); // between 1000 and 8000
 * backoffMs(4, { minMs: 100, maxMs: 2000 }, NO_JITTER); // 800
 * ```
 */
export function backoffMs(
  n: number,
  bounds: BackoffBounds,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(bounds.maxMs, bounds.minMs * 2 ** Math.max(0, n - 1));
  return bounds.minMs + random() * Math.max(0, ceiling - bounds.minMs);
}

/** A `random` for {@linkcode backoffMs} that takes no chance: every wait is its ceiling. */
export const NO_JITTER = (): number => 1;
