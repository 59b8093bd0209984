/**
 * Lifecycle events: what workers report about a task on the events exchange, and what the api
 * reads back into the task store and out to live watchers. Their wire form is in `wire.ts`.
 *
 * @module
 */

import type { FileInfo } from "./files.ts";

/**
 * The states a task moves through; `succeeded`, `dead` and `cancelled` are terminal (until a dead
 * task is replayed). `retrying` means an attempt failed and the next one waits for its backoff.
 */
export type TaskState = "queued" | "running" | "retrying" | "succeeded" | "dead" | "cancelled";

/** All task states, in the order a task reaches them. */
export const TASK_STATES: readonly TaskState[] = [
  "queued",
  "running",
  "retrying",
  "succeeded",
  "dead",
  "cancelled",
];

/**
 * What an event reports: a state change, progress within the running state, a delivery of the
 * task's callback, or a cancel asked of a running task (these two only add a step to its
 * history).
 */
export type EventType = TaskState | "progress" | "callback" | "cancel";

/** A failure, as recorded on a dead task. */
export interface TaskError {
  message: string;
  name?: string;
  stack?: string;
}

/** The event a task was made from (see `POST /events/{topic}`): its id and its topic. */
export interface EventOrigin {
  id: string;
  topic: string;
}

/** One lifecycle event of one task. */
export interface TaskEvent {
  type: EventType;
  id: string;
  handler: string;
  /** The attempt this event belongs to; 0 for `queued`; for `callback`, the delivery's. */
  attempt: number;
  /** How many times the task was replayed from its dead letters before this run; absent for 0. */
  replay?: number;
  /** For `queued` and `retrying`: when the next attempt may start (ms since the epoch). */
  runAt?: number;
  /** When it happened, in ms since the epoch. */
  at: number;
  /** When the task was enqueued (ms since the epoch), when known. */
  createdAt?: number;
  /**
   * For an attempt's outcome (`retrying`, `succeeded`, `dead`): when its handler started, so the
   * store has the attempt's start even if its transient `running` event was lost.
   */
  startedAt?: number;
  payload?: unknown;
  /** The event the task was made from; on the events that carry its payload. */
  event?: EventOrigin;
  /**
   * Where its callback goes: on `queued` and `retrying` for the store to keep (a cancel sends
   * it), and on the ends, for the recorder to send it.
   */
  callback?: string;
  /** On `queued`: the files uploaded with it. */
  files?: FileInfo[];
  /** Its W3C trace id: on `queued`, and on every event of a task no Warren producer recorded. */
  traceId?: string;
  result?: unknown;
  error?: TaskError;
  progress?: unknown;
}

/** Whether a state is final. */
export function isTerminal(state: TaskState): boolean {
  return state === "succeeded" || state === "dead" || state === "cancelled";
}
