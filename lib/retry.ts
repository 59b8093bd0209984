/**
 * What follows a failed attempt: another one after a backoff (exponential, full jitter between a
 * handler's `backoff.min` and `backoff.max`), or the dead letters.
 *
 * @module
 */

/** The step after a failed attempt. */
export type AfterFailure = { retry: true; delaySeconds: number } | { retry: false };

/**
 * Decides what follows failed attempt `attempt` (1-based) of a handler allowing `retries`: a
 * permanent error, or the last attempt, goes to the dead letters; anything else waits its
 * backoff, rounded up to the delay cascade's whole seconds.
 *
 * @example
 * ```ts
 * afterFailure(1, false, { retries: 3, backoff: { minMs: 1000, maxMs: 600_000 } });
 * // { retry: true, delaySeconds: 1 }
 * ```
 */
export function afterFailure(
  attempt: number,
  permanent: boolean,
  policy: { retries: number; backoff: { minMs: number; maxMs: number } },
): AfterFailure {
  if (permanent || attempt > policy.retries) return { retry: false };
  return { retry: true, delaySeconds: Math.ceil(retryDelayMs(attempt, policy.backoff) / 1000) };
}

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
