/**
 * Waiting for a task to end (`?wait=30s` on `POST /tasks/{handler}` and `GET /tasks/{id}`): a
 * request holds its answer until the task is terminal, the wait runs out, or the client goes.
 * It hears the end through the live feed, which hears every node's commits, so a wait costs no
 * polling of the store: one read when it starts, and one more only if it runs out.
 *
 * @module
 */

import { parseSecondsOrDuration } from "../duration.ts";
import { isTerminal } from "../events.ts";
import type { TaskRecord } from "../store/store.ts";
import type { ApiDeps } from "./deps.ts";

/**
 * Reads `?wait=`: seconds (`30`) or a duration (`30s`, `1m`), at most `maxMs` (a longer one
 * waits `maxMs`). Returns 0 when absent, or what is wrong as a string.
 *
 * @example
 * ```ts
 * parseWait("30s", 60_000); // 30000
 * parseWait("2m", 60_000); // 60000
 * parseWait("soon", 60_000); // 'wait must be …'
 * ```
 */
export function parseWait(text: string | undefined, maxMs: number): number | string {
  if (text === undefined || text === "") return 0;
  const ms = parseSecondsOrDuration(text);
  if (ms === undefined || !Number.isFinite(ms)) {
    return `wait must be seconds (30) or a duration (30s, 1m); the longest wait is ` +
      `${maxMs / 1000}s (WARREN_MAX_WAIT) (got "${text}")`;
  }
  return Math.min(ms, maxMs);
}

/**
 * Waits up to `ms` for task `id` to end, or until `signal` aborts: resolves with the task once it
 * is terminal, or as it is then; undefined for a task the store does not know. It listens first
 * and reads after, so an end between the two is not missed.
 *
 * @example
 * ```ts
 * declare const deps: import("./deps.ts").ApiDeps;
 * const task = await awaitEnd(deps, "t-1", 30_000, AbortSignal.timeout(60_000));
 * ```
 */
export async function awaitEnd(
  deps: Pick<ApiDeps, "feed" | "store">,
  id: string,
  ms: number,
  signal: AbortSignal,
): Promise<TaskRecord | undefined> {
  const ended = Promise.withResolvers<void>();
  let last: TaskRecord | undefined;
  const unsubscribe = deps.feed.subscribe(id, (change) => {
    if (change && !isTerminal(change.task.state)) return;
    last = change?.task; // undefined when the feed closes: the server is stopping
    ended.resolve();
  });
  try {
    const now = await deps.store.get(id);
    if (!now || isTerminal(now.state) || ms <= 0) return now;
    const timer = setTimeout(ended.resolve, ms);
    const abort = () => ended.resolve();
    signal.addEventListener("abort", abort, { once: true });
    await ended.promise;
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
    // Out of time: read once, in case a notice of its end was lost with a connection.
    return last ?? await deps.store.get(id);
  } finally {
    unsubscribe();
  }
}
