/**
 * A task's record in the store, and the rule that folds lifecycle events into it: state only
 * moves forward, whatever order events arrive in.
 *
 * @module
 */

import {
  type EventType,
  isTerminal,
  type TaskError,
  type TaskEvent,
  type TaskState,
} from "../events.ts";

/** What the store knows of one task. Times are ms since the epoch, `null` until known. */
export interface TaskRecord {
  id: string;
  handler: string;
  state: TaskState;
  /** Attempts started so far. */
  attempts: number;
  payload: unknown;
  result: unknown;
  error: TaskError | null;
  progress: unknown;
  createdAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}

/** The outcome of folding one event into a record. */
export interface Merge {
  record: TaskRecord;
  /** Set when watchers should hear of it: the event moved the task or reported progress. */
  visible: EventType | undefined;
}

const RANK: Record<TaskState, number> = { queued: 0, running: 1, succeeded: 2, dead: 2 };

/** Orders a (state, attempt) pair: later attempts win, and within one, later states. */
function position(state: TaskState, attempt: number): number {
  return attempt * 10 + RANK[state];
}

/**
 * Folds an event into a record (or starts one); returns `undefined` when the event changes
 * nothing. Terminal states are final; late or duplicate events only fill in missing facts.
 *
 * @example
 * ```ts
 * const { record } = mergeEvent(undefined, { type: "running", id, handler, attempt: 1, at })!;
 * mergeEvent(record, { type: "queued", id, handler, attempt: 0, at }); // fills createdAt only
 * ```
 */
export function mergeEvent(current: TaskRecord | undefined, event: TaskEvent): Merge | undefined {
  const record: TaskRecord = current ? { ...current } : {
    id: event.id,
    handler: event.handler,
    state: "queued",
    attempts: 0,
    payload: null,
    result: null,
    error: null,
    progress: null,
    createdAt: null,
    startedAt: null,
    finishedAt: null,
  };
  let changed = current === undefined;
  let visible: EventType | undefined;

  if (event.payload !== undefined && (record.payload === null || record.payload === undefined)) {
    record.payload = event.payload;
    changed = true;
  }
  const createdAt = event.createdAt ?? (event.type === "queued" ? event.at : undefined);
  if (createdAt !== undefined && (record.createdAt === null || createdAt < record.createdAt)) {
    record.createdAt = createdAt;
    changed = true;
  }

  if (event.type === "progress") {
    if (record.state === "running" && event.attempt === record.attempts) {
      record.progress = event.progress ?? null;
      changed = true;
      visible = "progress";
    }
  } else if (
    (current === undefined || !isTerminal(record.state)) &&
    (current === undefined ||
      position(event.type, event.attempt) > position(record.state, record.attempts))
  ) {
    record.state = event.type;
    record.attempts = Math.max(record.attempts, event.attempt);
    if (event.type === "running") record.startedAt ??= event.at;
    if (isTerminal(event.type)) record.finishedAt = event.at;
    if (event.type === "succeeded") record.result = event.result ?? null;
    if (event.error) record.error = event.error;
    changed = true;
    visible = event.type;
  }
  return changed ? { record, visible } : undefined;
}
