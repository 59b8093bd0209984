/**
 * How each handler's workers fare over time: restarts, recent deaths and the last error, for
 * `/handlers`, `/readyz` and the metrics.
 *
 * @module
 */

/**
 * Deaths within a minute that make a handler "crash looping" (`WorkerStatus.crashLooping`) in
 * /readyz and /handlers.
 */
export const CRASH_LOOP_DEATHS = 3;
const WINDOW_MS = 60_000;

/** See {@linkcode createHealth}. */
export interface Health {
  /** A worker of `handler` died (and will be restarted unless `restarted` is false). */
  died(handler: string, reason: string, restarted: boolean): void;
  /** The handler's record so far. */
  of(handler: string): { restarts: number; crashLooping: boolean; lastError: string | undefined };
}

/**
 * Creates an empty record.
 *
 * @example
 * ```ts
 * const health = createHealth();
 * health.died("hello", "boom", true);
 * health.of("hello"); // { restarts: 1, crashLooping: false, lastError: "boom" }
 * ```
 */
export function createHealth(now: () => number = Date.now): Health {
  const restarts = new Map<string, number>();
  const deaths = new Map<string, number[]>();
  const lastErrors = new Map<string, string>();
  const recent = (handler: string) =>
    (deaths.get(handler) ?? []).filter((at) => at > now() - WINDOW_MS);
  return {
    died(handler, reason, restarted) {
      lastErrors.set(handler, reason);
      if (!restarted) return;
      deaths.set(handler, [...recent(handler), now()]);
      restarts.set(handler, (restarts.get(handler) ?? 0) + 1);
    },
    of: (handler) => ({
      restarts: restarts.get(handler) ?? 0,
      crashLooping: recent(handler).length >= CRASH_LOOP_DEATHS,
      lastError: lastErrors.get(handler),
    }),
  };
}
