/**
 * Adaptive batching: run a flush soon after work arrives, but at most once per interval. Under
 * light load every flush runs at once (no added latency); under heavy load work gathers for up to
 * the interval, so one flush carries many items.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/**
 * Returns `schedule`, which arranges one call of `flush`: on the next turn of the event loop, or,
 * if the last flush ran less than `minIntervalMs` ago, when that interval has passed.
 *
 * @example
 * ```ts
 * const items: number[] = [];
 * const schedule = createFlusher(() => console.log(items.splice(0)), 2);
 * items.push(1);
 * schedule();
 * ```
 */
export function createFlusher(flush: () => void, minIntervalMs: number): () => void {
  let scheduled = false;
  let last = 0;
  const run = () => {
    scheduled = false;
    last = performance.now();
    flush();
  };
  return () => {
    if (scheduled) return;
    scheduled = true;
    const wait = last + minIntervalMs - performance.now();
    if (wait > 0) setTimeout(run, wait);
    else setImmediate(run);
  };
}
