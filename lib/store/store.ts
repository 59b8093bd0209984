/**
 * The task store: where task state lives so that GET /tasks/{id} can answer. Implementations
 * fold lifecycle events in batches (see {@linkcode mergeEvent}) and answer queries.
 *
 * @module
 */

import type { EventType, TaskEvent, TaskState } from "../events.ts";
import type { HistoryEntry, TaskRecord } from "./task.ts";

export type { TaskRecord };

/**
 * A change watchers should hear of: the task as it is now, the event type that moved it (or
 * reported progress) if one did, and the steps added to its history (what metrics count).
 */
export interface TaskChange {
  type: EventType | undefined;
  task: TaskRecord;
  steps: HistoryEntry[];
}

/** Filters of {@linkcode TaskStore.list}. */
export interface TaskFilter {
  handler?: string;
  state?: TaskState;
  /** Most tasks returned, newest first. */
  limit: number;
}

/** Where task state is kept. */
export interface TaskStore {
  /** Folds a batch of events in one transaction; returns the changes watchers should see. */
  apply(events: TaskEvent[]): Promise<TaskChange[]>;
  /** One task, or undefined. */
  get(id: string): Promise<TaskRecord | undefined>;
  /** Recent tasks, newest first. */
  list(filter: TaskFilter): Promise<TaskRecord[]>;
  close(): Promise<void>;
}
