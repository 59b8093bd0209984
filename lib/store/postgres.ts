/**
 * The task store on PostgreSQL (`WARREN_STORE=postgres://…`), for any number of api processes.
 * It keeps the same contract as the SQLite store: one transaction per batch of events, folded
 * from the rows the batch touches, locked in id order so concurrent batches of several api nodes
 * never deadlock; a row another node created meanwhile makes the batch start again. Every commit
 * tells every node (NOTIFY), so each node's live views see every task.
 *
 * The schema is created and migrated at start-up by versioned migrations, under an advisory lock,
 * so several nodes may start at once. One database holds one Warren.
 *
 * @module
 */

import postgres from "postgres";
import type { TaskEvent } from "../events.ts";
import { type BatchEntry, changesOf, foldBatch } from "./batch.ts";
import type { TaskChange, TaskFilter, TaskStore } from "./store.ts";
import { json, recordOf, summaryOf, type SummaryRow, type TaskRow } from "./row.ts";
import type { TaskRecord } from "./task.ts";

type Sql = postgres.Sql<{ bigint: number }>;
type Tx = postgres.TransactionSql<{ bigint: number }>;

/** The schema, one step per version; a step never changes once released. */
const MIGRATIONS = [
  // JSON is kept as text, exactly as written (jsonb would reorder a payload's keys). seq orders
  // tasks by first sight without relying on clocks.
  `CREATE TABLE tasks (
     seq bigserial PRIMARY KEY,
     id text NOT NULL UNIQUE,
     handler text NOT NULL,
     state text NOT NULL,
     attempts integer NOT NULL,
     replays integer NOT NULL DEFAULT 0,
     payload text,
     result text,
     error text,
     progress text,
     created_at bigint,
     started_at bigint,
     finished_at bigint,
     run_at bigint,
     history text,
     version integer NOT NULL DEFAULT 0,
     dead_letter boolean NOT NULL DEFAULT false
   );
   CREATE INDEX tasks_handler ON tasks (handler, seq);
   CREATE INDEX tasks_state ON tasks (state, seq);`,
];

/** Key of the advisory lock that makes one node at a time migrate. */
const MIGRATION_LOCK = "7220131017355626";
/** The channel every commit is told on. */
const CHANNEL = "warren_tasks";
/** Largest NOTIFY payload PostgreSQL takes is 8000 bytes; leave room. */
const NOTIFY_MAX = 7_000;
/** A record this long or shorter (as JSON) goes with its notice, saving each node a read. */
const CARRY_MAX = 2_000;
/** Times a batch starts again when another node created one of its rows meanwhile. */
const RETRIES = 5;

/** Another writer created a row of this batch after it looked: start the batch again. */
class RowAppeared extends Error {
  override name = "RowAppeared";
}

/**
 * Connects to the database at `url`, migrates its schema, and returns the store.
 *
 * @example
 * ```ts
 * const store = await openPostgresStore("postgres://postgres@127.0.0.1:5432/warren");
 * await store.apply([{ type: "queued", id: "t-1", handler: "hello", attempt: 0, at: Date.now() }]);
 * await store.close();
 * ```
 */
export async function openPostgresStore(url: string): Promise<TaskStore> {
  const sql: Sql = postgres(url, {
    // Four batches at once (the writer's slots), reads beside them.
    max: 8,
    onnotice: () => {},
    connection: { application_name: "warren" },
    types: {
      bigint: { to: 20, from: [20], serialize: (n: number) => String(n), parse: Number },
    },
  });
  try {
    await migrate(sql);
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw error;
  }

  const read = async (ids: string[]): Promise<Map<string, TaskRecord>> => {
    const rows = await sql`SELECT * FROM tasks WHERE id = ANY(${ids})`;
    return new Map(rows.map((row) => [row.id as string, recordOf(row as unknown as TaskRow)]));
  };

  return {
    concurrency: 4,

    async apply(events) {
      for (let tries = 1;; tries++) {
        try {
          return await sql.begin((tx) => applyBatch(tx, events));
        } catch (error) {
          if (!retryable(error) || tries >= RETRIES) throw error;
        }
      }
    },

    async get(id) {
      return (await read([id])).get(id);
    },

    async list(filter: TaskFilter) {
      const rows = await sql`
        SELECT seq, id, handler, state, attempts, replays, error, created_at, started_at,
               finished_at, run_at
        FROM tasks ${where(sql, filter)}
        ORDER BY seq DESC LIMIT ${filter.limit + 1}`;
      const page = rows.slice(0, filter.limit);
      return {
        tasks: page.map((row) => summaryOf(row as unknown as SummaryRow)),
        next: rows.length > filter.limit ? page.at(-1)!.seq as number : undefined,
      };
    },

    async dropDeadLetters(ids) {
      if (ids.length > 0) await sql`UPDATE tasks SET dead_letter = false WHERE id = ANY(${ids})`;
    },

    follow(listener) {
      // Notices are handled one after another, so views hear changes in commit order.
      let chain = Promise.resolve();
      const hear = async (told: Told[]) => {
        const missing = told.filter((t) => !t.task).map((t) => t.id);
        const records = missing.length === 0
          ? new Map()
          : await read(missing).catch(() => undefined);
        if (!records) return; // a change missed by the views, not by the store
        listener(told.flatMap(({ id, type, steps, version, task: carried }) => {
          const task = carried ?? records.get(id);
          // Read after a later commit: that commit's own notice tells it.
          return task?.version === version ? [{ type: type ?? undefined, task, steps }] : [];
        }));
      };
      const listening = sql.listen(CHANNEL, (payload) => {
        const told = JSON.parse(payload) as Told[];
        chain = chain.then(() => hear(told));
      });
      return () => {
        listening.then((subscription) => subscription.unlisten()).catch(() => {});
      };
    },

    close: () => sql.end({ timeout: 5 }),
  };
}

/** Applies the schema's migrations not applied yet, one node at a time. */
async function migrate(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK}::bigint)`;
    await tx`CREATE TABLE IF NOT EXISTS warren_migrations (
               version integer PRIMARY KEY,
               applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set((await tx`SELECT version FROM warren_migrations`).map((r) => r.version));
    for (const [index, step] of MIGRATIONS.entries()) {
      if (done.has(index + 1)) continue;
      await tx.unsafe(step);
      await tx`INSERT INTO warren_migrations (version) VALUES (${index + 1})`;
    }
  });
}

/**
 * One batch in one transaction: the rows it touches, locked in id order; folded; new rows
 * inserted, changed ones updated in one statement, every node told: those three pipelined.
 */
async function applyBatch(tx: Tx, events: TaskEvent[]): Promise<TaskChange[]> {
  const ids = [...new Set(events.map((event) => event.id))].sort();
  const rows = await tx`SELECT * FROM tasks WHERE id = ANY(${ids}) ORDER BY id FOR UPDATE`;
  const stored = new Map(
    rows.map((row) => [row.id as string, recordOf(row as unknown as TaskRow)]),
  );
  const entries = foldBatch(events, (event) => stored.get(event.id));
  const written = [...entries.values()].filter((entry) => entry.task && entry.dirty);
  const fresh = written.filter((entry) => entry.before === undefined);
  const changed = written.filter((entry) => entry.before !== undefined);
  const changes = changesOf(entries);
  const steps: Promise<unknown>[] = [];
  if (fresh.length > 0) {
    const values = fresh.map((entry) => ({ ...stateColumns(entry.task!), ...firstColumns(entry) }));
    steps.push(
      tx`INSERT INTO tasks ${tx(values)} ON CONFLICT (id) DO NOTHING RETURNING id`.then((rows) => {
        if (rows.length < fresh.length) throw new RowAppeared("a row was created meanwhile");
      }),
    );
  }
  if (changed.length > 0) steps.push(update(tx, changed));
  for (const payload of notices(changes)) steps.push(tx`SELECT pg_notify(${CHANNEL}, ${payload})`);
  await Promise.all(steps);
  return changes;
}

/**
 * Writes the changed rows in one statement, from the same columns an insert writes; a payload
 * only where it was filled in (a payload is written once).
 */
function update(tx: Tx, entries: BatchEntry[]) {
  const rows = entries.map((entry) => ({
    id: entry.task!.id,
    ...stateColumns(entry.task!),
    filled: entry.task!.payload !== entry.before?.payload,
    payload: json(entry.task!.payload),
  }));
  const column = (name: keyof typeof rows[number]) => rows.map((row) => row[name] ?? null);
  // postgres.js sends a list of booleans as one boolean: they go as text.
  const flags = (name: "dead_letter" | "filled") => rows.map((row) => String(row[name]));
  return tx`
    UPDATE tasks SET
      state = u.state, attempts = u.attempts, replays = u.replays, result = u.result,
      error = u.error, progress = u.progress, created_at = u.created_at,
      started_at = u.started_at, finished_at = u.finished_at, run_at = u.run_at,
      history = u.history, version = u.version, dead_letter = u.dead_letter,
      payload = CASE WHEN u.filled THEN u.payload ELSE tasks.payload END
    FROM unnest(
      ${column("id")}::text[], ${column("state")}::text[], ${column("attempts")}::int[],
      ${column("replays")}::int[], ${column("result")}::text[], ${column("error")}::text[],
      ${column("progress")}::text[], ${column("created_at")}::bigint[],
      ${column("started_at")}::bigint[], ${column("finished_at")}::bigint[],
      ${column("run_at")}::bigint[], ${column("history")}::text[], ${column("version")}::int[],
      ${flags("dead_letter")}::text[]::bool[], ${flags("filled")}::text[]::bool[],
      ${column("payload")}::text[]
    ) AS u(id, state, attempts, replays, result, error, progress, created_at, started_at,
           finished_at, run_at, history, version, dead_letter, filled, payload)
    WHERE tasks.id = u.id`;
}

/** What a commit tells the other nodes of one change. */
interface Told {
  id: string;
  version: number;
  /** The record itself when it is small; else the listeners read it. */
  task?: TaskRecord;
  type: TaskChange["type"] | null;
  steps: TaskChange["steps"];
}

/** A batch's changes as NOTIFY payloads, each under PostgreSQL's limit. */
function notices(changes: TaskChange[]): string[] {
  const payloads: string[] = [];
  let told: Told[] = [];
  let size = 2;
  for (const { type, task, steps } of changes) {
    const brief: Told = { id: task.id, version: task.version, type: type ?? null, steps };
    const full = JSON.stringify({ ...brief, task });
    const one = full.length <= CARRY_MAX ? { ...brief, task } : brief;
    const bytes = (one === brief ? JSON.stringify(brief) : full).length + 1;
    if (size + bytes > NOTIFY_MAX && told.length > 0) {
      payloads.push(JSON.stringify(told));
      told = [];
      size = 2;
    }
    told.push(one);
    size += bytes;
  }
  if (told.length > 0) payloads.push(JSON.stringify(told));
  return payloads;
}

/** Whether a failed batch may simply run again: a row appeared, a deadlock, a serialization. */
function retryable(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return error instanceof RowAppeared || code === "40P01" || code === "40001" || code === "23505";
}

function where(sql: Sql, filter: TaskFilter) {
  const conditions = [];
  if (filter.handler) conditions.push(sql`handler = ${filter.handler}`);
  if (filter.state) conditions.push(sql`state = ${filter.state}`);
  if (filter.deadLetters) conditions.push(sql`state = 'dead' AND dead_letter`);
  if (filter.after !== undefined) conditions.push(sql`seq < ${filter.after}`);
  if (conditions.length === 0) return sql``;
  return sql`WHERE ${conditions.reduce((all, one) => sql`${all} AND ${one}`)}`;
}

/** The columns a new row has beside its state: written once. */
function firstColumns(entry: BatchEntry) {
  return { id: entry.task!.id, handler: entry.task!.handler, payload: json(entry.task!.payload) };
}

/** The columns a state change writes. */
function stateColumns(task: TaskRecord) {
  return {
    state: task.state,
    attempts: task.attempts,
    replays: task.replays,
    result: json(task.result),
    error: json(task.error),
    progress: json(task.progress),
    created_at: task.createdAt,
    started_at: task.startedAt,
    finished_at: task.finishedAt,
    run_at: task.runAt,
    history: JSON.stringify(task.history),
    version: task.version,
    dead_letter: task.deadLetter,
  };
}
