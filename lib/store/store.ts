/**
 * The task store: where task state lives so that GET /tasks/{id} can answer. Implementations
 * fold lifecycle events in batches (see {@linkcode mergeEvent}) and answer queries.
 *
 * @module
 */

import type { ScheduleTicks } from "./ticks.ts";
import type { EventType, TaskEvent, TaskState } from "../events.ts";
import type { IdempotencyKeys } from "./keys.ts";
import type { HistoryEntry, TaskRecord, TaskSummary } from "./task.ts";

export type { TaskRecord, TaskSummary };

/**
 * A change watchers should hear of: the task as it is now, the event type that moved it (or
 * reported progress) if one did, and the steps added to its history (what metrics count).
 */
export interface TaskChange {
  type: EventType | undefined;
  task: TaskRecord;
  steps: HistoryEntry[];
}

/** Which ended tasks {@linkcode TaskStore.prune} deletes. */
export interface PruneRule {
  state: "succeeded" | "dead" | "cancelled";
  /** Ended before this, ms since the epoch. */
  before: number;
  /** Only this handler's tasks… */
  handler?: string;
  /** …or every handler's but these. */
  except?: string[];
}

/** Filters of {@linkcode TaskStore.list}. */
export interface TaskFilter {
  handler?: string;
  state?: TaskState;
  /** Only dead tasks whose letter waits in the dead-letter queue. */
  deadLetters?: boolean;
  /** Most tasks returned, newest first. */
  limit: number;
  /** Where the page before ended (its `next`): only older tasks. */
  after?: Cursor;
}

/** A position in the newest-first order of tasks; opaque to clients (see {@linkcode encodeCursor}). */
export type Cursor = number;

/** One page of a list: summaries, newest first, and where the next page starts. */
export interface TaskPage {
  tasks: TaskSummary[];
  /** Undefined on the last page. */
  next: Cursor | undefined;
}

/**
 * The store cannot be reached now (its database is away): nothing was read or written; try
 * again later. The message names no address or password.
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

/** The bytes of tasks' uploaded files, in chunks (see `files.ts`). */
export interface FileChunks {
  /** Stores one chunk of a task's file. */
  writeChunk(taskId: string, field: string, seq: number, data: Uint8Array): Promise<void>;
  /** One chunk of a task's file, or undefined when there is none. */
  readChunk(taskId: string, field: string, seq: number): Promise<Uint8Array | undefined>;
  /** Deletes every file of a task (an upload refused, a task deleted). */
  deleteFiles(taskId: string): Promise<void>;
}

/**
 * Where task state is kept, with the files uploaded with tasks, the idempotency keys and the
 * schedules' ticks.
 */
export interface TaskStore extends FileChunks, IdempotencyKeys, ScheduleTicks {
  /** Folds a batch of events in one transaction; returns the changes watchers should see. */
  apply(events: TaskEvent[]): Promise<TaskChange[]>;
  /** One task, or undefined. */
  get(id: string): Promise<TaskRecord | undefined>;
  /** Recent tasks, newest first, as summaries, a page at a time. */
  list(filter: TaskFilter): Promise<TaskPage>;
  /** Notes that these tasks' dead letters are gone (purged, or not in the queue after all). */
  dropDeadLetters(ids: string[]): Promise<void>;
  /** Deletes a task and its files at once; resolves false when there was no such task. */
  delete(id: string): Promise<boolean>;
  /**
   * Deletes up to `limit` tasks (with their files) in `rule.state` that ended before
   * `rule.before`, of `rule.handler` or of every handler but `rule.except`, oldest first;
   * resolves with how many.
   */
  prune(rule: PruneRule, limit: number): Promise<number>;
  /** Deletes up to `limit` idempotency keys that expired by `now`; resolves with how many. */
  pruneKeys(now: number, limit: number): Promise<number>;
  /**
   * Hears every change any writer commits, this process's and other api nodes' (a store shared
   * by several nodes has it; a store with one writer does not need it). Returns the function
   * that stops listening.
   */
  follow?(listener: (changes: TaskChange[]) => void): () => void;
  close(): Promise<void>;
}

/**
 * A cursor as clients see it: an opaque, URL-safe string.
 *
 * @example
 * ```ts
 * decodeCursor(encodeCursor(42)); // 42
 * ```
 */
export function encodeCursor(cursor: Cursor): string {
  return btoa(`t${cursor}`).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
}

/** Reads a cursor a client sent back; undefined when it is not one this store made. */
export function decodeCursor(text: string): Cursor | undefined {
  try {
    const match = /^t(\d{1,15})$/.exec(atob(text.replaceAll("-", "+").replaceAll("_", "/")));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
