/**
 * How the PostgreSQL store writes a folded batch: in one statement, so one round trip and one
 * transaction without BEGIN or COMMIT. It inserts the new rows, updates the changed ones where
 * the row is still at the version the batch folded from (optimistic concurrency: no row is
 * locked while the batch is folded), and, when asked, tells the other nodes of the changes it
 * wrote (NOTIFY). A row that was created or changed meanwhile is left as it is and named in the
 * answer, so the store folds its events again from the row as it is now.
 *
 * Each column goes as one array (`unnest`), so the statement's text never changes with the
 * number of rows and each connection prepares it once.
 *
 * @module
 */

import type postgres from "postgres";
import type { BatchEntry } from "./batch.ts";
import { json } from "./row.ts";
import type { TaskChange } from "./store.ts";
import type { TaskRecord } from "./task.ts";

/** A connection pool, with PostgreSQL's bigint read as a number (ms since the epoch fit). */
export type Sql = postgres.Sql<{ bigint: number }>;

/** The channel every commit is told on. */
export const CHANNEL = "warren_tasks";
/** Largest NOTIFY payload PostgreSQL takes is 8000 bytes; leave room. */
const NOTIFY_MAX = 7_000;
/** A record this long or shorter (as JSON) goes with its notice, saving each node a read. */
const CARRY_MAX = 2_000;

/**
 * A NOTIFY payload: the changes one commit tells, and which process wrote them (it hears its
 * own changes straight from its writes).
 */
export interface Notice {
  from: string;
  told: Told[];
}

/** What a commit tells the other nodes of one change. */
export interface Told {
  id: string;
  version: number;
  /** The record itself when it is small; else the listeners read it. */
  task?: TaskRecord;
  type: TaskChange["type"] | null;
  steps: TaskChange["steps"];
}

/** A column's PostgreSQL type. */
type ColumnType = "text" | "int" | "bigint" | "bool";
type Value = string | number | boolean | null;

/** The columns a task's state writes (an insert and every update), with their types. */
const STATE_COLUMNS = {
  state: "text",
  attempts: "int",
  replays: "int",
  result: "text",
  error: "text",
  progress: "text",
  created_at: "bigint",
  started_at: "bigint",
  finished_at: "bigint",
  run_at: "bigint",
  history: "text",
  version: "int",
  dead_letter: "bool",
  event: "text",
  files: "text",
  callback: "text",
  trace_id: "text",
} as const satisfies Record<string, ColumnType>;

/** A new row: its state, and what is written once. */
const INSERT_COLUMNS = { id: "text", handler: "text", payload: "text", ...STATE_COLUMNS } as const;
/**
 * A changed row: its state; the version it was folded from; its payload only where the batch
 * filled it in (a payload is written once).
 */
const UPDATE_COLUMNS = {
  id: "text",
  folded_from: "int",
  payload: "text",
  ...STATE_COLUMNS,
} as const;

const WRITE = statement();

/**
 * Writes a folded batch's new and changed rows and, given `from` (the writer's origin), tells
 * every node; returns the ids of the rows it wrote. A row not written was created or changed by
 * another writer meanwhile.
 *
 * @example
 * ```ts
 * declare const sql: Sql;
 * declare const entries: import("./batch.ts").BatchEntry[];
 * const written = await writeBatch(sql, entries, entries.flatMap((e) => e.changes), "node-1");
 * ```
 */
export async function writeBatch(
  sql: Sql,
  entries: BatchEntry[],
  changes: TaskChange[],
  from?: string,
): Promise<Set<string>> {
  // Rows go in id order, so two writers that share rows never wait for each other in a circle.
  const dirty = entries.filter((entry) => entry.task && entry.dirty)
    .sort((a, b) => a.task!.id < b.task!.id ? -1 : 1);
  const fresh = dirty.filter((entry) => entry.before === undefined).map(({ task }) => ({
    id: task!.id,
    handler: task!.handler,
    payload: json(task!.payload),
    ...stateValues(task!),
  }));
  const changed = dirty.filter((entry) => entry.before !== undefined).map(({ task, before }) => ({
    id: task!.id,
    folded_from: before!.version,
    payload: task!.payload === before!.payload ? null : json(task!.payload),
    ...stateValues(task!),
  }));
  const parameters = [
    ...columnsOf(INSERT_COLUMNS, fresh),
    ...columnsOf(UPDATE_COLUMNS, changed),
    // Long JSON strings go as one JSON array: the driver escapes a text[] element far slower.
    JSON.stringify(from === undefined ? [] : notices(from, changes)),
    dirty.length,
  ];
  const [row] = await sql.unsafe(WRITE, parameters as postgres.ParameterOrJSON<never>[], {
    prepare: true,
  });
  const written = new Set(row.written as string[] | null);
  if (from !== undefined && written.size > 0 && written.size < dirty.length) {
    // The notices went only if every row was written: tell those that were, now.
    const told = notices(from, changes.filter((change) => written.has(change.task.id)));
    await sql`SELECT pg_notify(${CHANNEL}, notice)
              FROM json_array_elements_text(${JSON.stringify(told)}::text::json) AS notice`;
  }
  return written;
}

/** The statement, built once from the column lists. */
function statement(): string {
  const names = (columns: Record<string, ColumnType>) => Object.keys(columns).join(", ");
  const update = Object.keys(STATE_COLUMNS).map((name) => `${name} = u.${name}`).join(", ");
  let n = 0;
  /** `unnest($1::text[], $2::int[], …)`, one array parameter per column. */
  const unnest = (columns: Record<string, ColumnType>) => {
    // postgres.js sends a list of booleans as one boolean: they go as text.
    const cast = (type: ColumnType) => type === "bool" ? "text[]::bool[]" : `${type}[]`;
    return `unnest(${Object.values(columns).map((type) => `$${++n}::${cast(type)}`).join(", ")})`;
  };
  return `
    WITH inserted AS (
      INSERT INTO tasks (${names(INSERT_COLUMNS)})
      SELECT * FROM ${unnest(INSERT_COLUMNS)}
      ON CONFLICT (id) DO NOTHING
      RETURNING id
    ), updated AS (
      UPDATE tasks SET ${update},
        payload = coalesce(u.payload, tasks.payload)
      FROM ${unnest(UPDATE_COLUMNS)} AS u(${names(UPDATE_COLUMNS)})
      WHERE tasks.id = u.id AND tasks.version = u.folded_from
      RETURNING tasks.id
    ), written AS (
      SELECT id FROM inserted UNION ALL SELECT id FROM updated
    ), told AS MATERIALIZED (
      SELECT pg_notify('${CHANNEL}', notice)
      FROM json_array_elements_text($${++n}::text::json) AS notice
      WHERE (SELECT count(*) FROM written) = $${++n}::int
    )
    SELECT (SELECT array_agg(id) FROM written) AS written, (SELECT count(*) FROM told) AS told`;
}

/** A task's state, by column. */
function stateValues(task: TaskRecord): Record<keyof typeof STATE_COLUMNS, Value> {
  return {
    state: task.state,
    attempts: task.attempts,
    replays: task.replays,
    result: json(task.result),
    error: json(task.error),
    progress: json(task.progress),
    created_at: task.createdAt ?? null,
    started_at: task.startedAt ?? null,
    finished_at: task.finishedAt ?? null,
    run_at: task.runAt ?? null,
    history: JSON.stringify(task.history),
    version: task.version,
    dead_letter: task.deadLetter,
    event: json(task.event),
    files: task.files.length ? JSON.stringify(task.files) : null,
    callback: task.callback,
    trace_id: task.traceId,
  };
}

/** A batch's changes as NOTIFY payloads from `origin` ({@linkcode Notice}), each under the limit. */
function notices(origin: string, changes: TaskChange[]): string[] {
  const payloads: string[] = [];
  const envelope = (parts: string[]) => `${noticePrefix(origin)},"told":[${parts.join(",")}]}`;
  const empty = envelope([]).length;
  let parts: string[] = [];
  let size = empty;
  for (const { type, task, steps } of changes) {
    const brief: Told = { id: task.id, version: task.version, type: type ?? null, steps };
    const record = JSON.stringify(task);
    // The brief's JSON, with the record where it is small: `{…,"task":{…}}`.
    const part = JSON.stringify(brief).slice(0, -1) +
      (record.length <= CARRY_MAX ? `,"task":${record}}` : "}");
    const bytes = utf8Length(part) + 1;
    if (size + bytes > NOTIFY_MAX && parts.length > 0) {
      payloads.push(envelope(parts));
      parts = [];
      size = empty;
    }
    parts.push(part);
    size += bytes;
  }
  if (parts.length > 0) payloads.push(envelope(parts));
  return payloads;
}

/**
 * How every notice from `origin` begins, so that a process knows its own without parsing them.
 *
 * @example
 * ```ts
 * noticePrefix("a1"); // '{"from":"a1"'
 * ```
 */
export function noticePrefix(origin: string): string {
  return `{"from":${JSON.stringify(origin)}`;
}

/**
 * Who sent a notice, read from its beginning without parsing the rest.
 *
 * @example
 * ```ts
 * senderOf('{"from":"a1","told":[]}'); // "a1"
 * ```
 */
export function senderOf(payload: string): string | undefined {
  const quoted = /^\{"from":("(?:[^"\\]|\\.)*")/.exec(payload)?.[1];
  return quoted === undefined ? undefined : JSON.parse(quoted);
}

/** A notice that tells nothing: the hello of a store that listens (see `postgres_peers.ts`). */
export function hello(origin: string): string {
  return `${noticePrefix(origin)},"told":[]}`;
}

const encoder = new TextEncoder();
/** Bytes of a string in UTF-8, what PostgreSQL's limit counts. */
const utf8Length = (text: string) => encoder.encode(text).length;

/** The rows' values as one array per column, in the columns' order. */
function columnsOf<T extends Record<string, ColumnType>>(
  columns: T,
  rows: Record<keyof T, Value>[],
): Value[][] {
  return Object.entries(columns).map(([name, type]) =>
    rows.map((row) => type === "bool" ? String(row[name]) : row[name] ?? null)
  );
}
