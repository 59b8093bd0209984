/**
 * A task's Server-Sent Events (GET /tasks/{id}/events): its state now, then each change and each
 * progress report, until it ends. Each event's `id` is the task's version, so a client that
 * reconnects with `Last-Event-ID` hears only what it missed, and a client that has seen the end
 * is answered 204, which tells a standard EventSource to stop reconnecting.
 *
 * @module
 */

import type { Context } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { isTerminal } from "../events.ts";
import type { TaskChange, TaskRecord } from "../store/store.ts";
import type { ApiDeps } from "./deps.ts";
import { taskJson } from "./task_json.ts";

/** How long a client waits before it reconnects (the stream's `retry:`), in ms. */
export const RECONNECT_MS = 2_000;
const KEEPALIVE_MS = 15_000;

/**
 * Answers a watch of a task that exists: 204 when the client has seen its end, else the stream.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * declare const deps: import("./deps.ts").ApiDeps;
 * new Hono().get("/tasks/:id/events", async (c) => {
 *   const task = await deps.store.get(c.req.param("id"));
 *   return task ? watchTask(c, task, deps) : c.notFound();
 * });
 * ```
 */
export function watchTask(c: Context, task: TaskRecord, deps: Pick<ApiDeps, "feed" | "store">) {
  const seen = lastEventId(c.req.header("last-event-id"));
  if (isTerminal(task.state) && seen !== undefined && seen >= task.version) {
    return c.body(null, 204);
  }
  return streamSSE(c, (stream) => follow(stream, task.id, seen, deps));
}

/** The version a reconnecting client saw last, if it says one. */
function lastEventId(header: string | undefined): number | undefined {
  return header !== undefined && /^\d{1,15}$/.test(header.trim()) ? Number(header) : undefined;
}

/** Sends what the client has not seen yet, then follows the task to its end. */
async function follow(
  stream: SSEStreamingApi,
  id: string,
  seen: number | undefined,
  deps: Pick<ApiDeps, "feed" | "store">,
): Promise<void> {
  const queue: (TaskChange | undefined)[] = [];
  let wake: (() => void) | undefined;
  let open = true;
  const unsubscribe = deps.feed.subscribe(id, (change) => {
    queue.push(change);
    wake?.();
  });
  stream.onAbort(() => {
    open = false;
    wake?.();
  });
  try {
    await stream.write(`retry: ${RECONNECT_MS}\n\n`);
    // Read after subscribing, so no change between the read and the subscription is missed.
    const now = await deps.store.get(id);
    if (!now) return;
    let sent = seen ?? 0;
    if (seen === undefined || now.version > seen) {
      await send(stream, now.state, now);
      sent = now.version;
    }
    if (isTerminal(now.state)) return;
    while (open) {
      if (queue.length === 0) {
        if (!(await nextChange()) && open) {
          await stream.write(": keep-alive\n\n");
          // A change the feed missed (a shared store's notice lost with its connection).
          const later = await deps.store.get(id);
          if (later && later.version > sent) {
            queue.push({ type: later.state, task: later, steps: [] });
          }
        }
        continue;
      }
      for (const change of queue.splice(0)) {
        if (!change) return; // the server is shutting down
        if (!change.type || change.task.version <= sent) continue; // filled-in facts, or seen
        sent = change.task.version;
        await send(stream, change.type, change.task);
        if (isTerminal(change.task.state)) return;
      }
    }
  } finally {
    unsubscribe();
  }

  /** Waits for a change (true) or the keep-alive interval (false). */
  function nextChange(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), KEEPALIVE_MS);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve(true);
      };
    });
  }
}

function send(stream: SSEStreamingApi, event: string, task: TaskRecord): Promise<void> {
  return stream.writeSSE({ id: String(task.version), event, data: JSON.stringify(taskJson(task)) });
}
