/**
 * Recent rates for the dashboard: tasks succeeded and failed per handler, tasks made from events
 * per handler, and events that made tasks, counted per second over the last ten minutes from the
 * live feed.
 *
 * @module
 */

import { createRecent } from "../recent.ts";
import type { TaskChange } from "../store/store.ts";

/** One point of a rate series: what ended in a stretch of time starting at `at`. */
export interface RatePoint {
  /** Start of the stretch, ms since the epoch. */
  at: number;
  succeeded: number;
  failed: number;
}

/** What one handler did in a stretch of time. */
export interface HandlerCounts {
  succeeded: number;
  /** Failed attempts. */
  failed: number;
  /** Tasks made from events. */
  fromEvents: number;
}

/** A snapshot of {@linkcode Rates}. */
export interface RateSnapshot {
  /** Per handler, in the last minute. */
  perMinute: Record<string, HandlerCounts>;
  /** Events that made tasks in the last minute (each counted once, however many it made). */
  eventsPerMinute: number;
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
/** Event ids remembered, so an event whose tasks are recorded apart is counted once. */
const EVENTS_SEEN_MAX = 10_000;

/**
 * Creates an empty rate counter.
 *
 * @example
 * ```ts
 * import { createFeed } from "./feed.ts";
 * const rates = createRates();
 * createFeed().subscribeAll(rates.observe);
 * rates.snapshot().perMinute.hello; // { succeeded: 12, failed: 0, fromEvents: 0 }
 * ```
 */
export function createRates(now: () => number = Date.now): Rates {
  // second -> handler -> counts, and second -> events that made tasks
  const seconds = new Map<number, Map<string, HandlerCounts>>();
  const events = new Map<number, number>();
  const seen = createRecent<true>(EVENTS_SEEN_MAX);
  const prune = (second: number) => {
    for (const key of seconds.keys()) if (key <= second - WINDOW_S) seconds.delete(key);
    for (const key of events.keys()) if (key <= second - 60) events.delete(key);
  };
  const countsOf = (second: number, handler: string) => {
    let handlers = seconds.get(second);
    if (!handlers) {
      seconds.set(second, handlers = new Map());
      prune(second);
    }
    let counts = handlers.get(handler);
    if (!counts) handlers.set(handler, counts = { succeeded: 0, failed: 0, fromEvents: 0 });
    return counts;
  };
  return {
    observe(changes) {
      const second = Math.floor(now() / 1000);
      for (const { task, steps } of changes) {
        for (const { state, replay } of steps) {
          if (state === "queued" && task.event && !replay) {
            countsOf(second, task.handler).fromEvents++;
            if (!seen.get(task.event.id)) {
              seen.set(task.event.id, true);
              events.set(second, (events.get(second) ?? 0) + 1);
            }
          }
          if (state !== "succeeded" && state !== "retrying" && state !== "dead") continue;
          const counts = countsOf(second, task.handler);
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
            const minute = perMinute[handler] ??= { succeeded: 0, failed: 0, fromEvents: 0 };
            minute.succeeded += counts.succeeded;
            minute.failed += counts.failed;
            minute.fromEvents += counts.fromEvents;
          }
        }
      }
      let eventsPerMinute = 0;
      for (const [s, count] of events) if (s > second - 60) eventsPerMinute += count;
      return { perMinute, eventsPerMinute, series };
    },
  };
}
