/**
 * A task's record in the store, and the rule that folds lifecycle events into it: state only
 * moves forward, whatever order events arrive in, and a replay starts a new run of a dead task.
 *
 * @module
 */

import {
  type EventOrigin,
  type EventType,
  isTerminal,
  type TaskError,
  type TaskEvent,
  type TaskState,
} from "../events.ts";
import type { FileInfo } from "../files.ts";
import { bound } from "../task_error.ts";

/**
 * One step in a task's history: a state it reached, in which attempt and replay; a delivery of its
 * callback (`callback`, with the delivery's attempt, and its error when it failed); or a cancel
 * asked while it ran (`cancel`).
 */
export interface HistoryEntry {
  state: TaskState | "callback" | "cancel";
  attempt: number;
  /** Replays of the task before this step; absent for 0. */
  replay?: number;
  /** When it happened, ms since the epoch. */
  at: number;
  /** For `retrying`, `dead` and `callback`: why the attempt (or the delivery) failed. */
  error?: string;
}

/** What the store knows of one task. Times are ms since the epoch, `null` until known. */
export interface TaskRecord {
  id: string;
  handler: string;
  state: TaskState;
  /** Attempts started so far in the current run (a replay starts from 0 again). */
  attempts: number;
  /** Times the task was replayed from its dead letters. */
  replays: number;
  payload: unknown;
  result: unknown;
  error: TaskError | null;
  progress: unknown;
  createdAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** When a waiting task (delayed, or retrying after a failure) may start next. */
  runAt: number | null;
  /** The states the task reached, oldest first (at most {@linkcode HISTORY_MAX}). */
  history: HistoryEntry[];
  /** Grows with every change of the record: what a watcher saw last (the SSE event id). */
  version: number;
  /**
   * Whether the task's letter waits in its handler's dead-letter queue: set when it dies, unset
   * when it is replayed or its letter is purged. The dead-letter list is the tasks that have one.
   */
  deadLetter: boolean;
  /** The event the task was made from (see `POST /events/{topic}`); null for a task enqueued. */
  event: EventOrigin | null;
  /** The files uploaded with it; empty for none. */
  files: FileInfo[];
  /** Where its callback goes, when its producer said so; null for none or not known. */
  callback: string | null;
  /** Its W3C trace id (see `trace.ts`); null when not known. */
  traceId: string | null;
}

/** What a list shows of a task: no payload, result, progress or history; the error cut short. */
export interface TaskSummary {
  id: string;
  handler: string;
  state: TaskState;
  attempts: number;
  replays: number;
  /** The error's name and the first {@linkcode SUMMARY_ERROR_BYTES} of its message. */
  error: { name?: string; message: string } | null;
  createdAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  runAt: number | null;
}

/** How much of an error message a summary keeps, in UTF-8 bytes. */
export const SUMMARY_ERROR_BYTES = 256;

/**
 * A task's summary, for lists.
 *
 * @example
 * ```ts
 * declare const record: TaskRecord;
 * summarize(record).error?.message; // at most 256 bytes of it
 * ```
 */
export function summarize(
  task: Omit<TaskSummary, "error"> & { error: TaskError | null },
): TaskSummary {
  return {
    id: task.id,
    handler: task.handler,
    state: task.state,
    attempts: task.attempts,
    replays: task.replays,
    error: task.error && {
      ...(task.error.name === undefined ? {} : { name: task.error.name }),
      message: bound(task.error.message, SUMMARY_ERROR_BYTES),
    },
    createdAt: task.createdAt,
    startedAt: task.startedAt,
    finishedAt: task.finishedAt,
    runAt: task.runAt,
  };
}

/** The outcome of folding one event into a record. */
export interface Merge {
  record: TaskRecord;
  /** Set when watchers should hear of it: the event moved the task or reported progress. */
  visible: EventType | undefined;
  /** Steps the event added to the history (each step of a task is added once, ever). */
  steps: HistoryEntry[];
}

/** Steps of history kept per task; the oldest go first. */
export const HISTORY_MAX = 50;

const RANK: Record<TaskState, number> = {
  queued: 0,
  running: 1,
  retrying: 2,
  succeeded: 3,
  dead: 3,
  cancelled: 3,
};

/** Orders two (replay, attempt, state) positions: negative when `a` comes first. */
function compare(
  a: { replay: number; attempt: number; state: TaskState },
  b: { replay: number; attempt: number; state: TaskState },
): number {
  return a.replay - b.replay || a.attempt - b.attempt || RANK[a.state] - RANK[b.state];
}

/** A record with nothing known yet. */
function blank(event: TaskEvent): TaskRecord {
  return {
    id: event.id,
    handler: event.handler,
    state: "queued",
    attempts: 0,
    replays: 0,
    payload: null,
    result: null,
    error: null,
    progress: null,
    createdAt: null,
    startedAt: null,
    finishedAt: null,
    runAt: null,
    history: [],
    version: 0,
    deadLetter: false,
    event: null,
    files: [],
    callback: null,
    traceId: null,
  };
}

/**
 * Folds an event into a record (or starts one); returns `undefined` when the event changes
 * nothing. Within one run terminal states are final, and late or duplicate events only fill in
 * missing facts; an event of a later replay starts the next run. An event also fills in the steps
 * it implies that were never recorded: its task's `queued` (from `createdAt`) and, for an
 * attempt's outcome, that attempt's `running` (from `startedAt`).
 *
 * @example
 * ```ts
 * const task = { id: "t-1", handler: "hello" };
 * const { record } = mergeEvent(undefined, { ...task, type: "running", attempt: 1, at: 2 })!;
 * mergeEvent(record, { ...task, type: "queued", attempt: 0, at: 1 }); // fills createdAt only
 * ```
 */
export function mergeEvent(current: TaskRecord | undefined, event: TaskEvent): Merge | undefined {
  const record: TaskRecord = current ? { ...current } : blank(event);
  let changed = current === undefined;
  let visible: EventType | undefined;
  const steps: HistoryEntry[] = [];
  const step = (entry: HistoryEntry, error?: TaskError) => {
    const added = addHistory(record, entry, error);
    if (added) steps.push(added);
  };
  const replay = event.replay ?? 0;

  if (event.payload !== undefined && (record.payload === null || record.payload === undefined)) {
    record.payload = event.payload;
    changed = true;
  }
  if (event.files?.length && record.files.length === 0) {
    record.files = event.files;
    changed = true;
  }
  if (event.callback !== undefined && record.callback === null) {
    record.callback = event.callback;
    changed = true;
  }
  if (event.traceId !== undefined && record.traceId === null) {
    record.traceId = event.traceId;
    changed = true;
  }
  if (event.event !== undefined && record.event === null) {
    record.event = { id: event.event.id, topic: event.event.topic };
    changed = true;
  }
  const createdAt = event.createdAt ?? (event.type === "queued" ? event.at : undefined);
  if (createdAt !== undefined && (record.createdAt === null || createdAt < record.createdAt)) {
    record.createdAt = createdAt;
    changed = true;
  }
  // Every task was queued once: a task another AMQP client published has no event of its own.
  if (createdAt !== undefined && replay === 0 && event.type !== "queued") {
    step({ state: "queued", attempt: 0, at: createdAt });
  }

  if (event.type === "callback" || event.type === "cancel") {
    if (!current) return undefined; // a step of a task the store does not hold tells nothing
    step({ state: event.type, attempt: event.attempt, at: event.at, replay }, event.error);
    return changed || steps.length
      ? { record: bump(record), visible: undefined, steps }
      : undefined;
  }

  if (event.type === "progress") {
    if (
      record.state === "running" && event.attempt === record.attempts && replay === record.replays
    ) {
      record.progress = event.progress ?? null;
      changed = true;
      visible = "progress";
    }
    return changed || steps.length ? { record: bump(record), visible, steps } : undefined;
  }

  const state = event.type;
  const replayed = replay > record.replays;
  if (replayed) {
    // A replay: the dead task runs again from its first attempt.
    Object.assign(record, {
      replays: replay,
      state: "queued",
      attempts: 0,
      result: null,
      error: null,
      progress: null,
      startedAt: null,
      finishedAt: null,
      runAt: null,
      deadLetter: false,
    });
    changed = true;
    visible = "queued";
  }
  // An outcome implies its attempt's start, which a lost transient "running" may not have told.
  if (event.startedAt !== undefined && state !== "queued" && state !== "running") {
    step({ state: "running", attempt: event.attempt, at: event.startedAt, replay });
    if (replay === record.replays && record.startedAt === null) {
      record.startedAt = event.startedAt;
      changed = true;
    }
  }
  const position = { replay, attempt: event.attempt, state };
  const now = { replay: record.replays, attempt: record.attempts, state: record.state };
  const order = compare(position, now);
  const moves = current === undefined ||
    (replay === record.replays &&
      ((!isTerminal(record.state) && order > 0) || startedBeforeCancel(record, event)));
  // History takes every step once: the one that moves the task, and earlier ones arriving late.
  if (moves || replayed || order < 0) {
    step({ state, attempt: event.attempt, at: event.at, replay }, event.error);
  }
  if (moves) {
    record.state = state;
    record.attempts = Math.max(record.attempts, event.attempt);
    record.runAt = state === "queued" || state === "retrying" ? event.runAt ?? null : null;
    if (state === "running") record.startedAt ??= event.at;
    record.finishedAt = isTerminal(state) ? event.at : null;
    record.deadLetter = state === "dead";
    if (state === "succeeded") {
      record.result = event.result ?? null;
      record.error = null;
    }
    if (event.error) record.error = event.error;
    changed = true;
    visible = state;
  }
  return changed || steps.length ? { record: bump(record), visible, steps } : undefined;
}

/**
 * Whether an event shows that a task the api cancelled while it waited had been taken by a worker
 * already: it reports a later attempt. The cancel reaches that worker too (see
 * `worker/cancels.ts`), and the attempt ends as its handler decides.
 */
function startedBeforeCancel(record: TaskRecord, event: TaskEvent): boolean {
  return record.state === "cancelled" && event.type !== "cancelled" && event.type !== "queued" &&
    event.attempt > record.attempts;
}

/** A changed record's next version. */
function bump(record: TaskRecord): TaskRecord {
  record.version++;
  return record;
}

/**
 * Adds a step to the history unless it is there already (or is older than all the history
 * keeps); returns the entry added.
 */
function addHistory(
  record: TaskRecord,
  step: HistoryEntry,
  error?: TaskError,
): HistoryEntry | undefined {
  const replay = step.replay ?? 0;
  const seen = record.history.some((h) =>
    h.state === step.state && h.attempt === step.attempt && (h.replay ?? 0) === replay
  );
  const full = record.history.length >= HISTORY_MAX;
  if (seen || (full && step.at < record.history[0].at)) return undefined;
  const entry: HistoryEntry = { state: step.state, attempt: step.attempt, at: step.at };
  if (replay > 0) entry.replay = replay;
  if (error) entry.error = error.message;
  const history = [...record.history, entry].sort((a, b) => a.at - b.at);
  record.history = history.slice(-HISTORY_MAX);
  return entry;
}
