/**
 * Recent rates for the dashboard: tasks succeeded and failed per handler, counted per second
 * over the last ten minutes from the live feed.
 *
 * @module
 */

import type { TaskChange } from "../store/store.ts";

/** One point of a rate series: what ended in a stretch of time starting at `at`. */
export interface RatePoint {
  /** Start of the stretch, ms since the epoch. */
  at: number;
  succeeded: number;
  failed: number;
}

/** A snapshot of {@linkcode Rates}. */
export interface RateSnapshot {
  /** Per handler: succeeded and failed (failed attempts) in the last minute. */
  perMinute: Record<string, { succeeded: number; failed: number }>;
  /** All handlers together, in 10-second steps over the last ten minutes, oldest first. */
  series: RatePoint[];
}

/** See {@linkcode createRates}. */
export interface Rates {
  observe(changes: TaskChange[]): void;
  snapshot(now?: number): RateSnapshot;
}

const WINDOW_S = 600;
const STEP_S = 10;

/**
 * Creates an empty rate counter.
 *
 * @example
 * ```ts
 * import { createFeed } from "./feed.ts";
 * const rates = createRates();
 * createFeed().subscribeAll(rates.observe);
 * rates.snapshot().perMinute.hello; // { succeeded: 12, failed: 0 }
 * ```
 */
export function createRates(now: () => number = Date.now): Rates {
  // second -> handler -> counts
  const seconds = new Map<number, Map<string, { succeeded: number; failed: number }>>();
  const prune = (second: number) => {
    for (const key of seconds.keys()) if (key <= second - WINDOW_S) seconds.delete(key);
  };
  return {
    observe(changes) {
      const second = Math.floor(now() / 1000);
      for (const { task, steps } of changes) {
        for (const { state } of steps) {
          if (state !== "succeeded" && state !== "retrying" && state !== "dead") continue;
          let handlers = seconds.get(second);
          if (!handlers) {
            seconds.set(second, handlers = new Map());
            prune(second);
          }
          let counts = handlers.get(task.handler);
          if (!counts) handlers.set(task.handler, counts = { succeeded: 0, failed: 0 });
          if (state === "succeeded") counts.succeeded++;
          else counts.failed++;
        }
      }
    },
    snapshot(at = now()) {
      const second = Math.floor(at / 1000);
      prune(second);
      const perMinute: RateSnapshot["perMinute"] = {};
      const firstStep = Math.floor((second - WINDOW_S + 1) / STEP_S) * STEP_S;
      const series: RatePoint[] = [];
      for (let step = firstStep; step <= second; step += STEP_S) {
        series.push({ at: step * 1000, succeeded: 0, failed: 0 });
      }
      for (const [s, handlers] of seconds) {
        const point = series[Math.floor((s - firstStep) / STEP_S)];
        for (const [handler, counts] of handlers) {
          if (point) {
            point.succeeded += counts.succeeded;
            point.failed += counts.failed;
          }
          if (s > second - 60) {
            const minute = perMinute[handler] ??= { succeeded: 0, failed: 0 };
            minute.succeeded += counts.succeeded;
            minute.failed += counts.failed;
          }
        }
      }
      return { perMinute, series };
    },
  };
}
