/**
 * What follows a failed attempt: another one after a backoff (exponential, full jitter between a
 * handler's `backoff.min` and `backoff.max`), or the dead letters.
 *
 * @module
 */

import { backoffMs } from "./backoff.ts";

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
  return { retry: true, delaySeconds: Math.ceil(backoffMs(attempt, policy.backoff) / 1000) };
}
