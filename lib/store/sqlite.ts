/**
 * The default task store: one SQLite file through `node:sqlite` (WAL mode), kept across restarts.
 * One api process owns the file (it keeps copies of the records it wrote): a second one is
 * refused at start, told to use PostgreSQL.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { dirname } from "node:path";
import { ConfigError } from "../config.ts";
import type { TaskEvent } from "../events.ts";
import { createRecent } from "../recent.ts";
import { changesOf, foldBatch, refold } from "./batch.ts";
import { type IdempotencyKeys, type KeyRow, verdictOn } from "./keys.ts";
import { sqliteTicks, TICKS_SCHEMA } from "./sqlite_ticks.ts";
import type { FileChunks, TaskChange, TaskFilter, TaskStore } from "./store.ts";
import { json, recordOf, summaryOf, type SummaryRow, type TaskRow } from "./row.ts";
import type { TaskRecord } from "./task.ts";

// seq (the rowid) orders tasks by first sight without relying on clocks; every index ends in
// the rowid, so (handler) and (state) list newest first without a sort.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
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
  replays INTEGER NOT NULL DEFAULT 0,
  run_at INTEGER,
  history TEXT,
  version INTEGER NOT NULL DEFAULT 0,
  dead_letter INTEGER NOT NULL DEFAULT 0,
  event TEXT,
  files TEXT,
  callback TEXT,
  trace_id TEXT
);
CREATE TABLE IF NOT EXISTS file_chunks (
  task_id TEXT NOT NULL,
  field TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (task_id, field, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  task_id TEXT NOT NULL,
  state TEXT NOT NULL,
  answer TEXT,
  lease_until INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_handler ON tasks (handler);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state);
CREATE INDEX IF NOT EXISTS tasks_ended ON tasks (state, finished_at);
`;

/** Task records kept in memory for folding events without a read: the 5,000 used last, at least. */
const RECENT_MAX = 5_000;

/** Columns added since the first release, for files created before them. */
const ADDED_COLUMNS = {
  replays: "INTEGER NOT NULL DEFAULT 0",
  run_at: "INTEGER",
  history: "TEXT",
  version: "INTEGER NOT NULL DEFAULT 0",
  dead_letter: "INTEGER NOT NULL DEFAULT 0",
  event: "TEXT",
  files: "TEXT",
  callback: "TEXT",
  trace_id: "TEXT",
};

/**
 * Opens (and creates when missing) the SQLite store at `path`; `":memory:"` gives a throwaway one.
 *
 * @example
 * ```ts
 * const store = await openSqliteStore("./data/warren.db");
 * await store.apply([{ type: "queued", id: "t-1", handler: "hello", attempt: 0, at: Date.now() }]);
 * ```
 */
export async function openSqliteStore(path: string): Promise<TaskStore> {
  if (path !== ":memory:") await Deno.mkdir(dirname(path), { recursive: true });
  const owner = path === ":memory:" ? undefined : await own(path);
  const db = new DatabaseSync(path);
  // FULL: each commit is on disk before the recorder acks its events, so that a power cut cannot
  // take back a recorded outcome whose message the broker already let go (as PostgreSQL does).
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
  db.exec(SCHEMA);
  db.exec(TICKS_SCHEMA);
  const columns = new Set(
    (db.prepare("PRAGMA table_info(tasks)").all() as { name: string }[]).map((c) => c.name),
  );
  for (const [name, type] of Object.entries(ADDED_COLUMNS)) {
    if (!columns.has(name)) db.exec(`ALTER TABLE tasks ADD COLUMN ${name} ${type}`);
  }

  const select = db.prepare("SELECT * FROM tasks WHERE id = ?");
  const insert = db.prepare(`
    INSERT INTO tasks (id, handler, payload, state, attempts, result, error, progress,
                       created_at, started_at, finished_at, replays, run_at, history, version,
                       dead_letter, event, files, callback, trace_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING`);
  // A task's payload is written once (or filled in once): state changes leave it alone, so a
  // large payload is not serialized and rewritten with every event.
  const update = db.prepare(`
    UPDATE tasks SET state = ?, attempts = ?, result = ?, error = ?, progress = ?,
                     created_at = ?, started_at = ?, finished_at = ?, replays = ?,
                     run_at = ?, history = ?, version = ?, dead_letter = ?, event = ?,
                     files = ?, callback = ?, trace_id = ?
    WHERE id = ?`);
  const updatePayload = db.prepare("UPDATE tasks SET payload = ? WHERE id = ?");
  const dropLetter = db.prepare("UPDATE tasks SET dead_letter = 0 WHERE id = ?");

  // Records written lately: folding an event into a task that is still moving rarely needs a
  // read. This process is the file's only writer, so the copies stay true.
  const recent = createRecent<TaskRecord>(RECENT_MAX);
  const remember = (task: TaskRecord) => recent.set(task.id, task);
  const read = (id: string): TaskRecord | undefined => {
    const cached = recent.get(id);
    if (cached) return cached;
    const row = select.get(id) as TaskRow | undefined;
    return row && recordOf(row);
  };

  return {
    apply(events: TaskEvent[]): Promise<TaskChange[]> {
      // A "queued" event is almost always a task's first: skip the read, insert optimistically.
      const entries = foldBatch(
        events,
        (event) => event.type === "queued" ? recent.get(event.id) : read(event.id),
      );
      db.exec("BEGIN");
      try {
        for (const [id, entry] of entries) {
          if (!entry.task || !entry.dirty) continue;
          let written = entry;
          if (entry.before === undefined) {
            if (insert.run(...toRow(entry.task)).changes === 1) continue;
            // It was there after all (a worker's event came first): fold into the stored row.
            written = refold(read(id), entry.events);
            entries.set(id, written);
          }
          const task = written.task!;
          update.run(...stateRow(task), task.id);
          if (task.payload !== written.before?.payload) {
            updatePayload.run(json(task.payload), task.id);
          }
        }
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      for (const { task } of entries.values()) if (task) remember(task);
      return Promise.resolve(changesOf(entries));
    },

    get(id: string) {
      return Promise.resolve(read(id));
    },

    list(filter: TaskFilter) {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      const match = (clause: string, value: SQLInputValue) => {
        where.push(clause);
        params.push(value);
      };
      if (filter.handler) match("handler = ?", filter.handler);
      if (filter.state) match("state = ?", filter.state);
      if (filter.deadLetters) match("state = 'dead' AND dead_letter = ?", 1);
      if (filter.after !== undefined) match("seq < ?", filter.after);
      const sql = `SELECT ${SUMMARY_COLUMNS} FROM tasks
                   ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
                   ORDER BY seq DESC LIMIT ?`;
      // One row more than asked tells whether there is a next page.
      const rows = db.prepare(sql).all(...params, filter.limit + 1) as unknown as ListedRow[];
      const page = rows.slice(0, filter.limit);
      return Promise.resolve({
        tasks: page.map(summaryOf),
        next: rows.length > filter.limit ? page.at(-1)!.seq : undefined,
      });
    },

    dropDeadLetters(ids: string[]) {
      db.exec("BEGIN");
      try {
        for (const id of ids) dropLetter.run(id);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      for (const id of ids) {
        const cached = recent.get(id);
        if (cached) recent.set(id, { ...cached, deadLetter: false });
      }
      return Promise.resolve();
    },

    ...sqliteRemoval(db, (id) => recent.forget(id)),
    ...sqliteFiles(db),
    ...sqliteKeys(db),
    ...sqliteTicks(db),

    close() {
      if (db.isOpen) db.close();
      owner?.close();
      return Promise.resolve();
    },
  };
}

/**
 * Takes the file's lock (`<path>.lock`, held until the store closes or the process ends), or
 * refuses: another api process uses the file. The lock is separate from the database, so
 * readers of the file (a backup, `sqlite3`) are not in the way.
 */
async function own(path: string): Promise<Deno.FsFile> {
  const file = await Deno.open(`${path}.lock`, { create: true, write: true });
  if (await file.tryLock(true)) return file;
  file.close();
  throw new ConfigError(
    `WARREN_STORE ${path} is in use by another Warren api process; SQLite serves one api ` +
      "process: to run several, set WARREN_STORE to a postgres:// URL",
  );
}

/** A new row, in the column order of `insert`. */
function toRow(task: TaskRecord): SQLInputValue[] {
  return [task.id, task.handler, json(task.payload), ...stateRow(task)];
}

/** The columns a state change writes, in the order of `update` (and the tail of `insert`). */
function stateRow(task: TaskRecord): SQLInputValue[] {
  return [
    task.state,
    task.attempts,
    json(task.result),
    json(task.error),
    json(task.progress),
    task.createdAt,
    task.startedAt,
    task.finishedAt,
    task.replays,
    task.runAt,
    JSON.stringify(task.history),
    task.version,
    task.deadLetter ? 1 : 0,
    json(task.event),
    task.files.length ? JSON.stringify(task.files) : null,
    task.callback,
    task.traceId,
  ];
}

/** The columns a list reads: what a summary shows, and the order. */
const SUMMARY_COLUMNS = "seq, id, handler, state, attempts, replays, error, created_at, " +
  "started_at, finished_at, run_at";

type ListedRow = SummaryRow & { seq: number };

/** Uploaded files in the SQLite file: chunks of bytes in `file_chunks`. */
function sqliteFiles(db: DatabaseSync): FileChunks {
  const write = db.prepare(
    "INSERT OR REPLACE INTO file_chunks (task_id, field, seq, data) VALUES (?, ?, ?, ?)",
  );
  const read = db.prepare(
    "SELECT data FROM file_chunks WHERE task_id = ? AND field = ? AND seq = ?",
  );
  const remove = db.prepare("DELETE FROM file_chunks WHERE task_id = ?");
  return {
    writeChunk(taskId, field, seq, data) {
      write.run(taskId, field, seq, data);
      return Promise.resolve();
    },
    readChunk(taskId, field, seq) {
      const row = read.get(taskId, field, seq) as { data: Uint8Array } | undefined;
      return Promise.resolve(row && new Uint8Array(row.data));
    },
    deleteFiles(taskId) {
      remove.run(taskId);
      return Promise.resolve();
    },
  };
}

/** Idempotency keys in the SQLite file: this process is its only writer, so a read decides. */
function sqliteKeys(db: DatabaseSync): IdempotencyKeys {
  const select = db.prepare(`SELECT fingerprint, task_id, state, answer, lease_until, expires_at
                             FROM idempotency_keys WHERE scope = ? AND key = ?`);
  const put = db.prepare(`INSERT OR REPLACE INTO idempotency_keys
    (scope, key, fingerprint, task_id, state, answer, lease_until, expires_at)
    VALUES (?, ?, ?, ?, 'pending', NULL, ?, ?)`);
  const lease = db.prepare(
    "UPDATE idempotency_keys SET lease_until = ? WHERE scope = ? AND key = ?",
  );
  const complete = db.prepare(
    "UPDATE idempotency_keys SET state = 'done', answer = ? WHERE scope = ? AND key = ?",
  );
  const release = db.prepare(
    "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND task_id = ? AND state = 'pending'",
  );
  return {
    claimKey(claim) {
      const { scope, key, now } = claim;
      const row = select.get(scope, key) as KeyRow | undefined;
      if (!row || row.expires_at <= now) {
        put.run(
          scope,
          key,
          claim.fingerprint,
          claim.taskId,
          now + claim.leaseMs,
          now + claim.ttlMs,
        );
        return Promise.resolve({ kind: "claimed" as const });
      }
      return verdictOn(row, claim, () => {
        lease.run(now + claim.leaseMs, scope, key);
        return Promise.resolve(true);
      });
    },
    completeKey(scope, key, answer) {
      complete.run(answer, scope, key);
      return Promise.resolve();
    },
    releaseKey(scope, key, taskId) {
      release.run(scope, key, taskId);
      return Promise.resolve();
    },
  };
}

/**
 * Deleting tasks from the SQLite file: one with its files, or the ended ones past a cutoff, in a
 * batch; and expired idempotency keys. `forget` drops a deleted task from the process's copies.
 */
function sqliteRemoval(
  db: DatabaseSync,
  forget: (id: string) => void,
): Pick<TaskStore, "delete" | "prune" | "pruneKeys"> {
  return {
    delete(id: string) {
      db.exec("BEGIN");
      try {
        db.prepare("DELETE FROM file_chunks WHERE task_id = ?").run(id);
        const { changes } = db.prepare("DELETE FROM tasks WHERE id = ?").run(id);
        db.exec("COMMIT");
        forget(id);
        return Promise.resolve(changes > 0);
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    },

    prune(rule, limit) {
      const only = rule.handler === undefined
        ? `handler NOT IN (${(rule.except ?? []).map(() => "?").join(", ")})`
        : "handler = ?";
      const names = rule.handler === undefined ? rule.except ?? [] : [rule.handler];
      const ids = (db.prepare(
        `SELECT id FROM tasks WHERE state = ? AND finished_at < ? AND ${only}
         ORDER BY finished_at LIMIT ?`,
      ).all(rule.state, rule.before, ...names, limit) as { id: string }[]).map((row) => row.id);
      db.exec("BEGIN");
      try {
        const chunks = db.prepare("DELETE FROM file_chunks WHERE task_id = ?");
        const task = db.prepare("DELETE FROM tasks WHERE id = ?");
        for (const id of ids) {
          chunks.run(id);
          task.run(id);
          forget(id);
        }
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      return Promise.resolve(ids.length);
    },

    pruneKeys(now, limit) {
      const { changes } = db.prepare(
        `DELETE FROM idempotency_keys WHERE (scope, key) IN (
           SELECT scope, key FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`,
      ).run(now, limit);
      return Promise.resolve(Number(changes));
    },
  };
}
