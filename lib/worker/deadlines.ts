/**
 * Hard deadlines of running attempts: past its time limit and a grace, an attempt whose handler
 * has not returned gets its worker terminated (`supervisor.ts`).
 *
 * @module
 */

import { coarseTimeout } from "../coarse_timer.ts";

/** See {@linkcode createDeadlines}. */
export interface Deadlines {
  /**
   * Calls `overran` unless {@linkcode Deadlines.clear} comes for `key` within `ms`; a deadline
   * armed sooner for `key` stays instead.
   */
  arm(key: string, ms: number, overran: () => void): void;
  /** The attempt's handler returned: no deadline any more. */
  clear(key: string): void;
  /** Drops every deadline (on shutdown, the grace bounds them). */
  clearAll(): void;
}

/**
 * Creates an empty set of deadlines.
 *
 * @example
 * ```ts
 * const deadlines = createDeadlines();
 * deadlines.arm("t-1/0/1", 3_000, () => console.log("overran"));
 * deadlines.clear("t-1/0/1");
 * ```
 */
export function createDeadlines(): Deadlines {
  const timers = new Map<string, { clear: () => void; due: number }>();
  const clear = (key: string) => {
    timers.get(key)?.clear();
    timers.delete(key);
  };
  return {
    arm(key, ms, overran) {
      const due = Date.now() + ms;
      if ((timers.get(key)?.due ?? Infinity) <= due) return;
      clear(key);
      const clearTimer = coarseTimeout(() => {
        timers.delete(key);
        overran();
      }, ms);
      timers.set(key, { clear: clearTimer, due });
    },
    clear,
    clearAll() {
      for (const key of [...timers.keys()]) clear(key);
    },
  };
}
