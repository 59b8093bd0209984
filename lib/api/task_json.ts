/**
 * The JSON forms of a task the HTTP api writes: the whole task (GET /tasks/{id}, SSE) and its
 * summary (every list, the dashboard's stream), in one place.
 *
 * @module
 */

import type { TaskRecord, TaskSummary } from "../store/store.ts";
import { summarize } from "../store/task.ts";

/** A time as the api writes it: ISO 8601, or null when unknown (or no date can hold it). */
export function isoTime(ms: number | null): string | null {
  return ms === null || !(Math.abs(ms) <= 8.64e15) ? null : new Date(ms).toISOString();
}

/**
 * A task as a list shows it: no payload, result, progress or history; the error's message cut
 * short.
 *
 * @example
 * ```ts
 * import { summarize, type TaskRecord } from "../store/task.ts";
 * declare const record: TaskRecord;
 * summaryJson(summarize(record)); // { id, handler, state, attempts, …, links }
 * ```
 */
export function summaryJson(task: TaskSummary) {
  return {
    id: task.id,
    handler: task.handler,
    state: task.state,
    attempts: task.attempts,
    replays: task.replays,
    error: task.error,
    created_at: isoTime(task.createdAt),
    started_at: isoTime(task.startedAt),
    finished_at: isoTime(task.finishedAt),
    run_at: isoTime(task.runAt),
    links: taskLinks(task.id),
  };
}

/**
 * The whole task, as GET /tasks/{id} and its events show it.
 *
 * @example
 * ```ts
 * declare const record: import("../store/task.ts").TaskRecord;
 * taskJson(record).history; // [{ state: "queued", attempt: 0, replay: 0, at: "…", error: null }, …]
 * ```
 */
export function taskJson(task: TaskRecord) {
  return {
    ...summaryJson(summarize(task)),
    error: task.error,
    progress: task.progress,
    payload: task.payload,
    result: task.result,
    event: task.event,
    trace_id: task.traceId,
    files: task.files.map((file) => ({
      field: file.field,
      filename: file.filename,
      type: file.type,
      size: file.size,
      sha256: file.sha256,
      link: `/tasks/${task.id}/files/${file.field}`,
    })),
    history: task.history.map((step) => ({
      state: step.state,
      attempt: step.attempt,
      replay: step.replay ?? 0,
      at: isoTime(step.at),
      error: step.error ?? null,
    })),
  };
}

/** Where a task and its events are. */
export function taskLinks(id: string) {
  return { self: `/tasks/${id}`, events: `/tasks/${id}/events` };
}
