/**
 * The default task store: one SQLite file through `node:sqlite` (WAL mode), kept across restarts.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { dirname } from "node:path";
import type { TaskEvent } from "../events.ts";
import type { TaskChange, TaskFilter, TaskStore } from "./store.ts";
import { mergeEvent, type TaskRecord } from "./task.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  handler TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  payload TEXT,
  result TEXT,
  error TEXT,
  progress TEXT,
  created_at INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_seq ON tasks (seq);
CREATE INDEX IF NOT EXISTS tasks_handler_seq ON tasks (handler, seq);
CREATE INDEX IF NOT EXISTS tasks_state_seq ON tasks (state, seq);
`;

interface Row {
  id: string;
  handler: string;
  state: string;
  attempts: number;
  payload: string | null;
  result: string | null;
  error: string | null;
  progress: string | null;
  created_at: number | null;
  started_at: number | null;
  finished_at: number | null;
}

/**
 * Opens (and creates when missing) the SQLite store at `path`; `":memory:"` gives a throwaway one.
 *
 * @example
 * ```ts
 * const store = await openSqliteStore("./data/warren.db");
 * await store.apply([{ type: "queued", id, handler: "hello", attempt: 0, at: Date.now() }]);
 * ```
 */
export async function openSqliteStore(path: string): Promise<TaskStore> {
  if (path !== ":memory:") await Deno.mkdir(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
  db.exec(SCHEMA);

  const select = db.prepare("SELECT * FROM tasks WHERE id = ?");
  // seq orders the list by first sight, newest first, without relying on clocks.
  const upsert = db.prepare(`
    INSERT INTO tasks (id, handler, state, attempts, payload, result, error, progress,
                       created_at, started_at, finished_at, seq)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks))
    ON CONFLICT (id) DO UPDATE SET
      state = excluded.state, attempts = excluded.attempts, payload = excluded.payload,
      result = excluded.result, error = excluded.error, progress = excluded.progress,
      created_at = excluded.created_at, started_at = excluded.started_at,
      finished_at = excluded.finished_at`);

  const read = (id: string): TaskRecord | undefined => {
    const row = select.get(id) as Row | undefined;
    return row && fromRow(row);
  };

  return {
    apply(events: TaskEvent[]): Promise<TaskChange[]> {
      const changes: TaskChange[] = [];
      const pending = new Map<string, TaskRecord>();
      for (const event of events) {
        const merged = mergeEvent(pending.get(event.id) ?? read(event.id), event);
        if (!merged) continue;
        pending.set(event.id, merged.record);
        if (merged.visible) changes.push({ type: merged.visible, task: merged.record });
      }
      db.exec("BEGIN");
      try {
        for (const task of pending.values()) upsert.run(...toRow(task));
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      return Promise.resolve(changes);
    },

    get(id: string) {
      return Promise.resolve(read(id));
    },

    list(filter: TaskFilter) {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (filter.handler) {
        where.push("handler = ?");
        params.push(filter.handler);
      }
      if (filter.state) {
        where.push("state = ?");
        params.push(filter.state);
      }
      const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
                   ORDER BY seq DESC LIMIT ?`;
      const rows = db.prepare(sql).all(...params, filter.limit) as unknown as Row[];
      return Promise.resolve(rows.map(fromRow));
    },

    close() {
      if (db.isOpen) db.close();
      return Promise.resolve();
    },
  };
}

function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function parse(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

function toRow(task: TaskRecord): SQLInputValue[] {
  return [
    task.id,
    task.handler,
    task.state,
    task.attempts,
    json(task.payload),
    json(task.result),
    json(task.error),
    json(task.progress),
    task.createdAt,
    task.startedAt,
    task.finishedAt,
  ];
}

function fromRow(row: Row): TaskRecord {
  return {
    id: row.id,
    handler: row.handler,
    state: row.state as TaskRecord["state"],
    attempts: row.attempts,
    payload: parse(row.payload),
    result: parse(row.result),
    error: parse(row.error) as TaskRecord["error"],
    progress: parse(row.progress),
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
