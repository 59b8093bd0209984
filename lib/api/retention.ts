/**
 * Retention: the api deletes ended tasks (with their files) once they outlive their retention
 * (`WARREN_RETENTION` for succeeded, `WARREN_RETENTION_DEAD` for dead, or the handler's own
 * `config.retention`), and idempotency keys once they expire. It deletes in small batches with a
 * pause between them, so a large backlog never holds the store for long; every api node may run
 * it (a batch skips the rows another node is deleting).
 *
 * @module
 */

import type { Retention } from "../config.ts";
import type { HandlerInfo } from "../handler.ts";
import { errorMessage, logger } from "../log.ts";
import type { PruneRule, TaskStore } from "../store/store.ts";

/** Tasks (or keys) deleted by one statement at most. */
export const PRUNE_BATCH = 500;
/** The pause between two batches, so the store serves others meanwhile. */
const PAUSE_MS = 20;
/** How long schedules' ticks are kept (each handler's latest is kept always). */
const TICKS_KEPT_MS = 86_400_000;

/** A running pruner; see {@linkcode startPruner}. */
export interface Pruner {
  /** Runs one pass now (tests, and each interval); resolves with the tasks deleted. */
  run(): Promise<number>;
  /** Stops after the batch in hand. */
  stop(): Promise<void>;
}

/**
 * The rules a pass applies: each handler with its own retention, then every other handler with
 * the settings'.
 *
 * @example
 * ```ts
 * pruneRules([], { succeeded: 7 * 86_400_000, dead: 30 * 86_400_000 }, Date.now()).length; // 3
 * ```
 */
export function pruneRules(
  handlers: Pick<HandlerInfo, "name" | "config">[],
  retention: Retention,
  now: number,
): PruneRule[] {
  const own = handlers.filter((h) => h.config.retention.succeeded || h.config.retention.dead);
  const rules: PruneRule[] = [];
  for (const state of ["succeeded", "dead", "cancelled"] as const) {
    const kept = state === "cancelled" ? "succeeded" : state; // cancelled is kept as succeeded
    for (const h of own) {
      rules.push({
        state,
        before: now - (h.config.retention[kept] ?? retention[kept]),
        handler: h.name,
      });
    }
    rules.push({ state, before: now - retention[kept], except: own.map((h) => h.name) });
  }
  return rules;
}

/**
 * Starts pruning every `intervalMs`.
 *
 * @example
 * ```ts
 * declare const store: import("../store/store.ts").TaskStore;
 * const pruner = startPruner(store, [], { succeeded: 604_800_000, dead: 2_592_000_000 }, 60_000);
 * await pruner.stop();
 * ```
 */
export function startPruner(
  store: Pick<TaskStore, "prune" | "pruneKeys" | "pruneTicks">,
  handlers: Pick<HandlerInfo, "name" | "config">[],
  retention: Retention,
  intervalMs: number,
): Pruner {
  const log = logger("retention");
  let stopping = false;
  let running: Promise<number> | undefined;
  const pause = () => new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  const pass = async () => {
    const now = Date.now();
    let deleted = 0;
    for (const rule of pruneRules(handlers, retention, now)) {
      for (let n = PRUNE_BATCH; n === PRUNE_BATCH && !stopping; await pause()) {
        n = await store.prune(rule, PRUNE_BATCH);
        deleted += n;
      }
    }
    for (let n = PRUNE_BATCH; n === PRUNE_BATCH && !stopping; await pause()) {
      n = await store.pruneKeys(now, PRUNE_BATCH);
    }
    await store.pruneTicks(now - TICKS_KEPT_MS);
    if (deleted > 0) log.info("deleted {deleted} ended task(s) past their retention", { deleted });
    return deleted;
  };
  const run = () => {
    running ??= pass().catch((error) => {
      log.warn("cannot prune now ({error}); trying again later", { error: errorMessage(error) });
      return 0;
    }).finally(() => running = undefined);
    return running;
  };
  const timer = setInterval(run, intervalMs);
  return {
    run,
    async stop() {
      stopping = true;
      clearInterval(timer);
      await running;
    },
  };
}
