/**
 * The producer of the fault suites (chaos and cluster): a paced stream of POSTs to the chaos
 * handler, each payload asking for a fate (`ok`, `retry` once, `dead`, or, when asked for,
 * `cancel`: delayed, then cancelled), while faults happen. A refusal (503, 429, a dead server) is
 * retried as a new task, as a client would; only 202s count as accepted. A cancel is sent again
 * until it is answered.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The chaos handler's folder. */
export const CHAOS_HANDLERS = fileURLToPath(new URL("./handlers", import.meta.url));

/** What a task's payload asks the chaos handler for. */
export type Mode = "ok" | "retry" | "dead" | "cancel";

/** 94% succeed at once, 3% after one retry, 3% die; with `cancels`, 4% of the first are cancelled. */
export function modeOf(n: number, cancels = false): Mode {
  const r = n % 100;
  return r < 3 ? "retry" : r < 6 ? "dead" : cancels && r < 10 ? "cancel" : "ok";
}

/** The state a task of `mode` must end in. */
export function expectedState(mode: Mode): "succeeded" | "dead" | "cancelled" {
  return mode === "dead" ? "dead" : mode === "cancel" ? "cancelled" : "succeeded";
}

/** How long a task to be cancelled waits before it may run. */
export const CANCEL_DELAY_SECONDS = 20;

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Options of {@linkcode produce}. */
export interface ProduceOptions {
  /** Tasks to get accepted. */
  tasks: number;
  /** POSTs per second. */
  rate: number;
  /** Gives up by then (epoch ms). */
  deadline: number;
  /** Where the `n`th POST goes (a Warren's URL; asked each time, as processes restart). */
  target(n: number): string;
  /** Whether some tasks are cancelled (see {@linkcode modeOf}). */
  cancels?: boolean;
}

/** What a producer got: the accepted tasks with their modes, and how many POSTs were refused. */
export interface Produced {
  accepted: Map<string, Mode>;
  refused: { count: number };
  /** The status each cancel was answered with at last (200, 202, or 409 when it had ended). */
  cancelled: Map<string, number>;
  /** Resolves when `tasks` were accepted (or the deadline passed) and no POST is in flight. */
  done: Promise<void>;
}

/**
 * Starts producing; `accepted` and `refused` fill in while it runs.
 *
 * @example
 * ```ts
 * const produced = produce({ tasks: 100, rate: 50, deadline: Date.now() + 60_000, target: () => "http://127.0.0.1:8000" });
 * await produced.done;
 * console.log(produced.accepted.size, produced.refused.count);
 * ```
 */
export function produce(options: ProduceOptions): Produced {
  const accepted = new Map<string, Mode>();
  const refused = { count: 0 };
  const cancelled = new Map<string, number>();
  const cancel = async (n: number, id: string) => {
    while (Date.now() < options.deadline) {
      try {
        const response = await fetch(`${options.target(n)}/tasks/${id}/cancel`, {
          method: "POST",
          signal: AbortSignal.timeout(10_000),
        });
        await response.body?.cancel();
        if ([200, 202, 409].includes(response.status)) {
          return void cancelled.set(id, response.status);
        }
      } catch {
        // a dead server: as for a refused POST, try again
      }
      await sleep(250);
    }
  };
  const post = async (n: number, mode: Mode) => {
    try {
      const delay = mode === "cancel" ? `?delay=${CANCEL_DELAY_SECONDS}` : "";
      const response = await fetch(`${options.target(n)}/tasks/chaos${delay}`, {
        method: "POST",
        body: JSON.stringify({ mode }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await response.json();
      if (response.status !== 202) return void refused.count++;
      accepted.set(body.id, mode);
      if (mode === "cancel") await cancel(n, body.id);
    } catch {
      refused.count++;
      await sleep(100);
    }
  };
  const done = (async () => {
    let n = 0;
    const inflight = new Set<Promise<void>>();
    const begin = Date.now();
    while (accepted.size < options.tasks && Date.now() < options.deadline) {
      // Enough in flight to finish: wait, since a refused one must be sent again.
      if (accepted.size + inflight.size >= options.tasks) {
        await Promise.race(inflight);
        continue;
      }
      const due = begin + (n * 1000) / options.rate;
      if (due > Date.now()) await sleep(due - Date.now());
      if (inflight.size >= 32) await Promise.race(inflight);
      const one = post(n, modeOf(n, options.cancels));
      n++;
      inflight.add(one);
      one.finally(() => inflight.delete(one));
    }
    await Promise.all(inflight);
  })();
  return { accepted, refused, cancelled, done };
}
