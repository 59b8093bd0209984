/**
 * Cancel routes: `POST /tasks/{id}/cancel` for one task, `POST /handlers/{name}/cancel` for every
 * task of a handler that waits (queued, delayed, or retrying).
 *
 * A cancel goes first to the cancels stream (confirmed), which every worker reads (see
 * `worker/cancels.ts`), then to the store: a waiting task is `cancelled` at once, and its handler
 * never runs; a running one keeps running until its worker hears the cancel, aborts its
 * `ctx.signal` and ends it `cancelled` (terminating the worker if the handler goes on past the
 * grace). A task that has ended answers 409.
 *
 * @module
 */

import type { Hono } from "hono";
import { isTerminal, type TaskEvent, type TaskState } from "../events.ts";
import { errorMessage, logger } from "../log.ts";
import type { TaskRecord } from "../store/task.ts";
import type { ApiDeps } from "./deps.ts";
import { problem } from "./problem.ts";
import { taskJson } from "./task_json.ts";
import { unknownHandler, unknownTask } from "./tasks.ts";

/** Tasks one bulk cancel takes at most; the answer says when more are left. */
export const BULK_CANCEL_MAX = 10_000;
/** Tasks a bulk cancel reads, and appends to the stream, at a time. */
const PAGE = 500;
/** The states a bulk cancel takes: the tasks that wait. */
const WAITING: TaskState[] = ["queued", "retrying"];

/** Registers the cancel routes. */
export function cancelRoutes(app: Hono, deps: ApiDeps): void {
  app.post("/tasks/:id/cancel", async (c) => {
    const id = c.req.param("id");
    const task = await deps.store.get(id);
    if (!task) return unknownTask(id, deps);
    if (isTerminal(task.state)) return ended(task);
    await cancelTasks(deps, [task]);
    const now = await deps.store.get(id) ?? task;
    // A running task is cancelled once its worker hears it: accepted, not done.
    return c.json(taskJson(now), isTerminal(now.state) ? 200 : 202);
  });

  app.post("/handlers/:name/cancel", async (c) => {
    const handler = c.req.param("name");
    if (!deps.handlers.some((h) => h.name === handler)) {
      return unknownHandler(handler, deps.handlers.map((h) => h.name));
    }
    const { cancelled, more } = await cancelWaiting(deps, handler);
    return c.json({ handler, cancelled, more });
  });
}

/**
 * Cancels a handler's waiting tasks, a page at a time, up to {@linkcode BULK_CANCEL_MAX};
 * resolves with how many, and whether some are left.
 */
async function cancelWaiting(
  deps: ApiDeps,
  handler: string,
): Promise<{ cancelled: number; more: boolean }> {
  const seen = new Set<string>();
  for (const state of WAITING) {
    while (seen.size < BULK_CANCEL_MAX) {
      const limit = Math.min(PAGE, BULK_CANCEL_MAX - seen.size);
      const { tasks } = await deps.store.list({ handler, state, limit });
      const fresh = tasks.filter((task) => !seen.has(task.id));
      if (fresh.length === 0) break; // none left (or none the store could mark yet)
      const records = (await Promise.all(fresh.map((task) => deps.store.get(task.id))))
        .filter((task): task is TaskRecord => task !== undefined && !isTerminal(task.state));
      for (const task of fresh) seen.add(task.id);
      await cancelTasks(deps, records);
    }
  }
  const left = await Promise.all(
    WAITING.map((state) => deps.store.list({ handler, state, limit: 1 })),
  );
  return { cancelled: seen.size, more: left.some((page) => page.tasks.length > 0) };
}

/**
 * Cancels tasks that have not ended: appends them to the cancels stream, then records a waiting
 * one `cancelled` (and sends its callback, by way of the recorder) and a running one's request.
 */
async function cancelTasks(deps: ApiDeps, tasks: TaskRecord[]): Promise<void> {
  if (tasks.length === 0) return;
  const at = Date.now();
  const defaults = new Map(deps.handlers.map((h) => [h.name, h.config.callback]));
  await deps.cancel(tasks.map((task) => task.id));
  const events = tasks.map((task): TaskEvent => ({
    type: task.state === "running" ? "cancel" : "cancelled",
    id: task.id,
    handler: task.handler,
    attempt: task.attempts,
    ...(task.replays ? { replay: task.replays } : {}),
    at,
    ...callbackOf(task.callback ?? defaults.get(task.handler)),
  }));
  const log = logger("api");
  await deps.writer.write(events).catch((error) =>
    log.warn("cannot store cancels now ({error}); they are recorded later", {
      error: errorMessage(error),
    })
  );
  // The recorder records them too (what the store missed) and sends the callbacks they end.
  for (const batch of Map.groupBy(events, (e) => `${e.handler} ${e.type}`).values()) {
    await deps.recordLater(batch).catch((error) =>
      log.error("cannot record the cancel of {ids}: {error}", {
        ids: batch.map((e) => e.id).join(", "),
        error: errorMessage(error),
      })
    );
  }
}

/** A 409 for a task that has ended. */
function ended(task: TaskRecord): Response {
  return problem({
    slug: "task-ended",
    title: "Task already ended",
    status: 409,
    detail: `task "${task.id}" has ended (${task.state}): there is nothing to cancel`,
  });
}

/** The callback field of an event, when there is a callback. */
function callbackOf(url: string | undefined): { callback?: string } {
  return url ? { callback: url } : {};
}
