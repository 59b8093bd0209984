/**
 * The benchmark's two stores: which one a run uses (`--store=sqlite|postgres`), a PostgreSQL
 * database of the run's own, counting tasks straight from either store, and the database
 * server's CPU time.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { createDatabase, POSTGRES_ADMIN_URL } from "../tests/helpers/postgres.ts";
import type { Process } from "../tests/helpers/warren.ts";
import { cpuMs } from "./harness.ts";

/** A task store the benchmark can run on. */
export type StoreKind = "sqlite" | "postgres";

/** The store of a run's phases: `--store=postgres`, default sqlite. */
export function storeFlag(args: string[]): StoreKind {
  const flag = args.find((arg) => arg.startsWith("--store="))?.slice("--store=".length);
  if (flag === undefined || flag === "sqlite" || flag === "postgres") return flag ?? "sqlite";
  throw new Error(`--store must be sqlite or postgres (got ${flag})`);
}

/** A store for one Warren process: its environment, and what to do after. */
export interface BenchStore {
  kind: StoreKind;
  /** For `startWarren`: the PostgreSQL URL, or undefined for a temporary SQLite file. */
  storePath: string | undefined;
  drop(): Promise<void>;
}

/** A store of the run's own: SQLite in a temporary file, or a PostgreSQL database. */
export async function benchStore(kind: StoreKind): Promise<BenchStore> {
  if (kind === "sqlite") return { kind, storePath: undefined, drop: () => Promise.resolve() };
  const db = await createDatabase();
  await checkpoint();
  return { kind, storePath: db.url, drop: () => db.drop() };
}

/**
 * Writes out what earlier runs left in PostgreSQL's buffers, so that a run does not pay for the
 * one before it (a checkpoint is also what makes the first change of each page log it whole).
 * Needs a superuser; without one, runs simply vary more.
 */
async function checkpoint(): Promise<void> {
  const sql = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await sql`CHECKPOINT`;
  } catch {
    // not a superuser
  } finally {
    await sql.end();
  }
}

/** Counts a process's tasks, straight from its store. */
export interface StoreCounter {
  count(handler: string, state: string): Promise<number>;
  total(handler: string): Promise<number>;
  /** Each task's time from created to finished, in ms, sorted. */
  latencies(ids: string[]): Promise<number[]>;
  close(): Promise<void>;
}

/** A counter over the store a process uses. */
export function storeCounter(process: Process): StoreCounter {
  return process.storePath.startsWith("postgres")
    ? postgresCounter(process.storePath)
    : sqliteCounter(process.storePath);
}

/** A counter over a PostgreSQL store at `url`. */
export function postgresCounter(url: string): StoreCounter {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const n = (rows: { n: string | number }[]) => Number(rows[0].n);
  return {
    count: async (handler, state) =>
      n(await sql`SELECT count(*) AS n FROM tasks WHERE handler = ${handler} AND state = ${state}`),
    total: async (handler) =>
      n(await sql`SELECT count(*) AS n FROM tasks WHERE handler = ${handler}`),
    async latencies(ids) {
      const rows =
        await sql`SELECT finished_at - created_at AS ms FROM tasks WHERE id = ANY(${ids})`;
      return rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
    },
    close: () => sql.end(),
  };
}

function sqliteCounter(path: string): StoreCounter {
  const db = new DatabaseSync(path, { readOnly: true });
  const count = db.prepare("SELECT count(*) AS n FROM tasks WHERE handler = ? AND state = ?");
  const total = db.prepare("SELECT count(*) AS n FROM tasks WHERE handler = ?");
  const times = db.prepare("SELECT created_at, finished_at FROM tasks WHERE id = ?");
  return {
    count: (handler, state) => Promise.resolve((count.get(handler, state) as { n: number }).n),
    total: (handler) => Promise.resolve((total.get(handler) as { n: number }).n),
    latencies: (ids) =>
      Promise.resolve(
        ids.map((id) => {
          const r = times.get(id) as { created_at: number; finished_at: number };
          return r.finished_at - r.created_at;
        }).sort((a, b) => a - b),
      ),
    close: () => Promise.resolve(db.close()),
  };
}

/** CPU time the PostgreSQL server's processes on this machine used so far, in ms. */
export function databaseCpuMs(): number {
  let total = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const comm = Deno.readTextFileSync(`/proc/${entry.name}/comm`).trim();
      if (comm === "postgres") total += cpuMs(Number(entry.name));
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}
