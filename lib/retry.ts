/**
 * When a failed attempt runs again: exponential backoff with full jitter between a handler's
 * `backoff.min` and `backoff.max`.
 *
 * @module
 */

/**
 * The wait before attempt `failed + 1`, in ms: uniform between `min` and
 * `min(max, min * 2^(failed - 1))`, so the first retry waits `min` and the spread doubles from
 * there (full jitter keeps a burst of failures from retrying in lockstep).
 *
 * @example
 * ```ts
 * retryDelayMs(1, { minMs: 1000, maxMs: 600_000 }); // 1000
 * retryDelayMs(4, { minMs: 1000, maxMs: 600_000 }); // between 1000 and 8000
 * ```
 */
export function retryDelayMs(
  failed: number,
  backoff: { minMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.max(0, failed - 1));
  return backoff.minMs + random() * (ceiling - backoff.minMs);
}
