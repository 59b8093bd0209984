/**
 * Cancels as a worker knows them. RabbitMQ cannot take a message out of the middle of a queue, so
 * a cancelled task's message stays where it is; instead the api appends the task's id to the
 * cancels stream (`<prefix>.cancels`), and every worker reads that stream whole on each
 * (re)connect before it takes a task, then follows it (`cancel_feed.ts`). A worker started after a
 * cancel knows it too, on any machine, through restarts of every process.
 *
 * A delivery of a cancelled task is acked with a `cancelled` event, and its handler never runs;
 * a running attempt of one has its `ctx.signal` aborted with a {@linkcode cancelledError}.
 *
 * A cancel is kept as long as the stream keeps it ({@linkcode CANCELS_KEPT_DAYS}), and at most
 * {@linkcode CANCELS_MAX} of them, the oldest going first: about 100 bytes each.
 *
 * @module
 */

import { CANCELS_KEPT_DAYS } from "../amqp/topology.ts";

/** Cancels one worker keeps at most. */
export const CANCELS_MAX = 100_000;

/** See {@linkcode createCancels}. */
export interface Cancels {
  /** Notes that tasks were cancelled at `at`; a running attempt of one is told at once. */
  add(ids: readonly string[], at: number): void;
  /** Whether the task was cancelled. */
  has(id: string): boolean;
  /**
   * Registers a running attempt of task `id`: `onCancel` is called if it is cancelled. Returns
   * the call that unregisters it.
   */
  watch(id: string, onCancel: () => void): () => void;
}

/** Options of {@linkcode createCancels}. */
export interface CancelsOptions {
  /** How long a cancel is kept, in ms; default {@linkcode CANCELS_KEPT_DAYS}. */
  keptMs?: number;
  /** How many are kept at most; default {@linkcode CANCELS_MAX}. */
  max?: number;
  /** Told when a cancel younger than `keptMs` is forgotten to make room. */
  onOverflow?(id: string): void;
  now?(): number;
}

/**
 * The reason `ctx.signal` aborts with when its task is cancelled: an Error named
 * `CancelledError` whose message is `cancelled`.
 *
 * @example
 * ```ts
 * cancelledError().message; // "cancelled"
 * ```
 */
export function cancelledError(): Error {
  const error = new Error("cancelled");
  error.name = "CancelledError";
  return error;
}

/**
 * Creates a worker's set of cancels.
 *
 * @example
 * ```ts
 * const cancels = createCancels();
 * const unwatch = cancels.watch("t-1", () => console.log("stop now"));
 * cancels.add(["t-1"], Date.now()); // logs "stop now"
 * cancels.has("t-1"); // true
 * unwatch();
 * ```
 */
export function createCancels(options: CancelsOptions = {}): Cancels {
  const keptMs = options.keptMs ?? CANCELS_KEPT_DAYS * 86_400_000;
  const max = options.max ?? CANCELS_MAX;
  const now = options.now ?? Date.now;
  /** Task id → when it was cancelled, oldest first (the stream's order). */
  const cancelled = new Map<string, number>();
  const watchers = new Map<string, Set<() => void>>();

  const forgetOld = () => {
    const horizon = now() - keptMs;
    for (const [id, at] of cancelled) {
      if (at >= horizon && cancelled.size <= max) return;
      cancelled.delete(id);
      if (at >= horizon) options.onOverflow?.(id);
    }
  };

  return {
    add(ids, at) {
      for (const id of ids) {
        cancelled.delete(id);
        cancelled.set(id, at);
        for (const onCancel of watchers.get(id) ?? []) onCancel();
      }
      forgetOld();
    },
    has: (id) => cancelled.has(id),
    watch(id, onCancel) {
      const set = watchers.get(id) ?? new Set();
      watchers.set(id, set.add(onCancel));
      return () => {
        set.delete(onCancel);
        if (set.size === 0) watchers.delete(id);
      };
    },
  };
}
