/**
 * The task store on PostgreSQL (`WARREN_STORE=postgres://…`), for any number of api processes.
 * It keeps the same contract as the SQLite store, with optimistic concurrency: a batch of events
 * is folded from the records this process wrote or read last (reading only the rows it does not
 * know), and written in one statement that changes a row only if it is still at the version the
 * batch folded from (see `postgres_write.ts`). The events of a row another node changed or
 * created meanwhile are folded again from the row as it is now. While other api nodes listen,
 * every commit tells them (NOTIFY, see `postgres_peers.ts`), so each node's live views see every
 * task (see `postgres_follow.ts`).
 *
 * The schema is created and migrated at start-up by versioned migrations, under an advisory lock,
 * so several nodes may start at once. One database holds one Warren.
 *
 * @module
 */

import postgres from "postgres";
import type { TaskEvent } from "../events.ts";
import { type BatchEntry, changesOf, foldBatch } from "./batch.ts";
import { followStore } from "./postgres_follow.ts";
import { postgresFiles } from "./postgres_files.ts";
import { postgresRemoval } from "./postgres_prune.ts";
import { postgresKeys } from "./postgres_keys.ts";
import { postgresTicks } from "./postgres_ticks.ts";
import { createPeers } from "./postgres_peers.ts";
import {
  CHANNEL,
  hello,
  type Notice,
  noticePrefix,
  senderOf,
  type Sql,
  writeBatch,
} from "./postgres_write.ts";
import { createRecent, type Recent } from "../recent.ts";
import { recordOf, summaryOf, type SummaryRow, type TaskRow } from "./row.ts";
import {
  StoreUnavailableError,
  type TaskChange,
  type TaskFilter,
  type TaskStore,
} from "./store.ts";
import type { TaskRecord } from "./task.ts";

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
  // The event a task was made from (JSON: id and topic).
  `ALTER TABLE tasks ADD COLUMN event text;`,
  // The files uploaded with a task (JSON), and their bytes, in chunks (see files.ts).
  `ALTER TABLE tasks ADD COLUMN files text;
   CREATE TABLE file_chunks (
     task_id text NOT NULL,
     field text NOT NULL,
     seq integer NOT NULL,
     data bytea NOT NULL,
     PRIMARY KEY (task_id, field, seq)
   );`,
  // Idempotency keys (see keys.ts).
  `CREATE TABLE idempotency_keys (
     scope text NOT NULL,
     key text NOT NULL,
     fingerprint text NOT NULL,
     task_id text NOT NULL,
     state text NOT NULL,
     answer text,
     lease_until bigint NOT NULL,
     expires_at bigint NOT NULL,
     PRIMARY KEY (scope, key)
   );
   CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);`,
  // Ended tasks by when they ended, for pruning.
  `CREATE INDEX tasks_ended ON tasks (state, finished_at);`,
  // Where a task's callback goes (a cancel by the api sends it).
  `ALTER TABLE tasks ADD COLUMN callback text;`,
  // Schedules' ticks (see ticks.ts).
  `CREATE TABLE schedule_ticks (
     handler text NOT NULL,
     tick bigint NOT NULL,
     task_id text NOT NULL,
     missed integer NOT NULL,
     sent boolean NOT NULL,
     lease_until bigint NOT NULL,
     PRIMARY KEY (handler, tick)
   );`,
  // The task's W3C trace id.
  `ALTER TABLE tasks ADD COLUMN trace_id text;`,
];

/** Key of the advisory lock that makes one node at a time migrate. */
const MIGRATION_LOCK = "7220131017355626";
/** Times a task's events are folded again when another node keeps changing its row. */
const RETRIES = 5;
/** Records a process remembers to fold batches from: the 5,000 used last, at least. */
const RECENT_MAX = 5_000;

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
    // The writer's batches, one at a time, and the reads of the api's routes beside them.
    max: 6,
    onnotice: () => {},
    // While the database is away, a request waits at most this long to hear so (503), not the
    // driver's 30 s and backoff of up to 20 s between attempts.
    connect_timeout: 5,
    backoff: (attempts: number) => Math.min(0.05 * 2 ** attempts, 1),
    connection: {
      application_name: "warren",
      // Every statement here finds its rows through an index. A prepared statement's generic
      // plan, made while the table is small, would scan it whole long after it has grown
      // (and planning each statement anew costs more than writing its rows).
      enable_seqscan: "off",
    },
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

  const recent = createRecent<TaskRecord>(RECENT_MAX);
  /** This process, in its notices. */
  const origin = crypto.randomUUID();
  /** This process's followers: they hear its changes as it commits them… */
  const local = new Set<(changes: TaskChange[]) => void>();
  /** …and the other processes' notices as they come. */
  const remote = new Set<(notice: Notice) => void>();
  const read = async (ids: string[]): Promise<Map<string, TaskRecord>> => {
    const rows = await sql`SELECT * FROM tasks WHERE id = ANY(${ids})`;
    return new Map(rows.map((row) => [row.id as string, recordOf(row as unknown as TaskRow)]));
  };
  const { peers, unlisten } = await listen(sql, origin, remote);

  return {
    async apply(events) {
      const from = peers.present() ? origin : undefined; // tell only when someone listens
      const changes = await applyEvents({ sql, read, from, recent }, events).catch(away);
      for (const pass of local) pass(changes);
      return changes;
    },

    async get(id) {
      return (await read([id]).catch(away)).get(id);
    },

    async list(filter: TaskFilter) {
      const rows = await sql`
        SELECT seq, id, handler, state, attempts, replays, error, created_at, started_at,
               finished_at, run_at
        FROM tasks ${where(sql, filter)}
        ORDER BY seq DESC LIMIT ${filter.limit + 1}`.catch(away);
      const page = rows.slice(0, filter.limit);
      return {
        tasks: page.map((row) => summaryOf(row as unknown as SummaryRow)),
        next: rows.length > filter.limit ? page.at(-1)!.seq as number : undefined,
      };
    },

    async dropDeadLetters(ids) {
      if (ids.length === 0) return;
      // A new version, so that no node writes the record it remembers over this change.
      await sql`UPDATE tasks SET dead_letter = false, version = version + 1
                WHERE id = ANY(${ids}) AND dead_letter`.catch(away);
      for (const id of ids) recent.forget(id);
    },

    ...postgresRemoval(sql, away, (id) => recent.forget(id)),
    ...postgresFiles(sql, away),
    ...postgresKeys(sql, away),
    ...postgresTicks(sql, away),

    follow: (listener) => followStore({ local, remote, read }, listener),

    async close() {
      peers.stop();
      await unlisten().catch(() => {});
      await sql.end({ timeout: 5 });
    },
  };
}

/**
 * Listens on the store's channel: notes who else is there (see `postgres_peers.ts`) and passes
 * other processes' notices to `remote`; then says hello.
 */
async function listen(sql: Sql, origin: string, remote: Set<(notice: Notice) => void>) {
  const mine = noticePrefix(origin);
  const peers = createPeers(async () =>
    void await sql`SELECT pg_notify(${CHANNEL}, ${hello(origin)})`
  );
  const subscription = await sql.listen(CHANNEL, (payload) => {
    if (payload.startsWith(mine)) return;
    const from = senderOf(payload);
    if (from !== undefined) peers.heard(from);
    if (remote.size === 0) return;
    const notice = JSON.parse(payload) as Notice;
    for (const hear of remote) hear(notice);
  });
  peers.greet();
  return { peers, unlisten: () => subscription.unlisten() };
}

/** Connection failures, by the driver's or the system's code, and PostgreSQL's own. */
const AWAY = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
]);

/** Rethrows a lost or refused connection as {@linkcode StoreUnavailableError}, else as it is. */
function away(error: unknown): never {
  const code = String((error as { code?: unknown }).code ?? "");
  if (AWAY.has(code) || code.startsWith("08")) {
    throw new StoreUnavailableError(`the task store (PostgreSQL) cannot be reached (${code})`);
  }
  throw error;
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
 * Folds events and writes them in one statement; the events of rows another writer changed
 * meanwhile are folded again from a fresh read, up to {@linkcode RETRIES} times.
 */
async function applyEvents(
  { sql, read, from, recent }: {
    sql: Sql;
    read: (ids: string[]) => Promise<Map<string, TaskRecord>>;
    from: string | undefined;
    recent: Recent<TaskRecord>;
  },
  events: TaskEvent[],
): Promise<TaskChange[]> {
  const applied: TaskChange[] = [];
  let pending = events;
  for (let round = 1; pending.length > 0; round++) {
    if (round > RETRIES) {
      const tasks = new Set(pending.map((event) => event.id)).size;
      throw new Error(`other writers changed ${tasks} tasks of this batch ${RETRIES} times over`);
    }
    const entries = await fold(read, recent, pending, round === 1);
    const again = new Set<string>();
    try {
      const written = await writeBatch(sql, [...entries.values()], changesOf(entries), from);
      for (const [id, entry] of entries) {
        if (entry.dirty && !written.has(id)) again.add(id);
        else if (entry.task) {
          recent.set(id, entry.task);
          applied.push(...entry.changes);
        }
      }
    } catch (error) {
      if (!retryable(error)) throw error;
      for (const id of entries.keys()) again.add(id);
    }
    for (const id of again) recent.forget(id);
    pending = pending.filter((event) => again.has(event.id));
  }
  return applied;
}

/**
 * Folds each task's events from the record remembered, else from its row, read for the batch;
 * on a first try, a task whose events start with its first `queued` is taken as new (if its
 * row exists after all, the write says so and the next try reads it).
 */
async function fold(
  read: (ids: string[]) => Promise<Map<string, TaskRecord>>,
  recent: Recent<TaskRecord>,
  events: TaskEvent[],
  guess: boolean,
): Promise<Map<string, BatchEntry>> {
  const known = new Map<string, TaskRecord | undefined>();
  for (const event of events) {
    if (known.has(event.id)) continue;
    const record = recent.get(event.id);
    if (record || (guess && isFirstQueued(event))) known.set(event.id, record);
  }
  const unknown = [...new Set(events.map((event) => event.id))].filter((id) => !known.has(id));
  if (unknown.length > 0) { for (const [id, record] of await read(unknown)) known.set(id, record); }
  return foldBatch(events, (event) => known.get(event.id));
}

/** Whether an event is a task's first, enqueued: its row most likely does not exist yet. */
const isFirstQueued = (event: TaskEvent) =>
  event.type === "queued" && event.attempt === 0 && !event.replay;

/** Whether a failed write may simply run again: a deadlock, a serialization failure. */
function retryable(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "40P01" || code === "40001";
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
