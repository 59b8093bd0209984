/**
 * A task as a row of either store's `tasks` table (the same columns in SQLite and PostgreSQL),
 * and back: JSON columns are text, written exactly as serialized.
 *
 * @module
 */

import { summarize, type TaskRecord, type TaskSummary } from "./task.ts";

/** A row of `tasks`, as both drivers return it. */
export interface TaskRow {
  id: string;
  handler: string;
  state: string;
  attempts: number;
  replays: number;
  payload: string | null;
  result: string | null;
  error: string | null;
  progress: string | null;
  created_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  run_at: number | null;
  history: string | null;
  version: number;
  /** A boolean in PostgreSQL, 0 or 1 in SQLite. */
  dead_letter: boolean | number;
  /** The event the task was made from, as JSON; null for none (and in rows older than it). */
  event: string | null;
  /** The files uploaded with it, as JSON; null for none (and in rows older than it). */
  files: string | null;
  /** Where its callback goes; null for none (and in rows older than it). */
  callback: string | null;
  /** Its W3C trace id; null when not known (and in rows older than it). */
  trace_id: string | null;
}

/** The columns a list reads. */
export type SummaryRow = Pick<
  TaskRow,
  | "id"
  | "handler"
  | "state"
  | "attempts"
  | "replays"
  | "error"
  | "created_at"
  | "started_at"
  | "finished_at"
  | "run_at"
>;

/**
 * A value as a JSON column: text, or null for nothing.
 *
 * @example
 * ```ts
 * json({ n: 1 }); // '{"n":1}'
 * json(undefined); // null
 * ```
 */
export function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

/** A JSON column's value. */
function parse(text: string | null | undefined): unknown {
  return text === null || text === undefined ? null : JSON.parse(text);
}

/**
 * A row as a task record.
 *
 * @example
 * ```ts
 * declare const row: TaskRow;
 * recordOf(row).history; // the steps so far
 * ```
 */
export function recordOf(row: TaskRow): TaskRecord {
  return {
    ...summaryFields(row),
    payload: parse(row.payload),
    result: parse(row.result),
    progress: parse(row.progress),
    history: row.history === null ? [] : JSON.parse(row.history),
    version: row.version,
    deadLetter: Boolean(row.dead_letter),
    event: (parse(row.event) as TaskRecord["event"]) ?? null,
    files: (parse(row.files) as TaskRecord["files"]) ?? [],
    callback: row.callback ?? null,
    traceId: row.trace_id ?? null,
  };
}

/**
 * A list's row as a task summary.
 *
 * @example
 * ```ts
 * declare const row: SummaryRow;
 * summaryOf(row).state;
 * ```
 */
export function summaryOf(row: SummaryRow): TaskSummary {
  return summarize(summaryFields(row));
}

function summaryFields(row: SummaryRow) {
  return {
    id: row.id,
    handler: row.handler,
    state: row.state as TaskRecord["state"],
    attempts: row.attempts,
    replays: row.replays,
    error: parse(row.error) as TaskRecord["error"],
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    runAt: row.run_at,
  };
}
