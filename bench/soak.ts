/**
 * `deno task bench:soak [--tasks=1000000] [--store=sqlite|postgres] [--minute=60]`: Warren under
 * sustained load. It pushes `--tasks` POSTs (a million by default) through one all-in-one process
 * (a no-op handler, two workers, prefetch 64), on SQLite and then on PostgreSQL (or the `--store`
 * named), in rounds of `--minute` seconds, and prints per round: POSTs per second, their p50 and
 * p99 latency, the process's resident memory, the store's size and the task counters beside the
 * store's counts. Then it waits for every task to end, checks each `warren_tasks_*_total` against
 * the store, and measures the memory after 20 s idle. It fails if a task is unaccounted for or a
 * counter disagrees with the store. Writes bench/results/soak-<store>.json.
 *
 * @module
 */

import postgres from "postgres";
import { fileURLToPath as fromFileUrl } from "node:url";
import type { Process } from "../tests/helpers/warren.ts";
import { parseExposition, sampleValue } from "../tests/helpers/prometheus.ts";
import { BODY, CONNECTIONS, countFlag, finish, rssMb, say, sleep, warren } from "./harness.ts";
import { hasWrk, postLoad } from "./load.ts";
import { benchStore, type StoreCounter, storeCounter, type StoreKind } from "./stores.ts";

const RESULTS = Deno.env.get("BENCH_RESULTS") ?? fromFileUrl(new URL("./results", import.meta.url));
const TASKS = countFlag("tasks", 1_000_000);
const MINUTE = countFlag("minute", 60);
const STORES: StoreKind[] = Deno.args.includes("--store=sqlite")
  ? ["sqlite"]
  : Deno.args.includes("--store=postgres")
  ? ["postgres"]
  : ["sqlite", "postgres"];
const COUNTERS = ["enqueued", "started", "succeeded", "failed"] as const;

/** One round of load. */
interface Round {
  round: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  rssMb: number;
  storeMb: number;
  /** The counters after the round, and the store's count of tasks. */
  enqueued: number;
  succeeded: number;
  stored: number;
}

/** The task counters a process exposes, for the no-op handler. */
async function counters(url: string): Promise<Record<typeof COUNTERS[number], number>> {
  const families = parseExposition(await (await fetch(`${url}/metrics`)).text());
  const value = (name: string) =>
    sampleValue(families, `warren_tasks_${name}_total`, { handler: "noop" }) ?? 0;
  return Object.fromEntries(COUNTERS.map((name) => [name, value(name)])) as Record<
    typeof COUNTERS[number],
    number
  >;
}

/** The store's size on disk, in MB: the SQLite file and its log, or the database. */
async function storeMb(process: Process): Promise<number> {
  if (process.storePath.startsWith("postgres")) {
    const sql = postgres(process.storePath, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`SELECT pg_database_size(current_database()) AS bytes`;
      return Number(row.bytes) / 2 ** 20;
    } finally {
      await sql.end();
    }
  }
  let bytes = 0;
  for (const suffix of ["", "-wal"]) {
    bytes += await Deno.stat(process.storePath + suffix).then((s) => s.size, () => 0);
  }
  return bytes / 2 ** 20;
}

/** Loads one store's Warren with `TASKS` tasks, a round at a time; returns the rounds. */
async function load(
  process: Process,
  counter: StoreCounter,
): Promise<{ rounds: Round[]; accepted: number }> {
  const generator = await hasWrk() ? "wrk" : "deno-fetch";
  const rounds: Round[] = [];
  let accepted = 0;
  while (accepted < TASKS) {
    const result = await postLoad({
      generator,
      url: `${process.url}/tasks/noop`,
      connections: CONNECTIONS,
      seconds: MINUTE,
      body: BODY,
    });
    if (result.failures > 0) throw new Error(`${result.failures} POSTs were not answered 202`);
    accepted += result.requests;
    const now = await counters(process.url);
    const round: Round = {
      round: rounds.length + 1,
      perSecond: Math.round(result.perSecond),
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      rssMb: Math.round(await rssMb(process.pid)),
      storeMb: Math.round(await storeMb(process)),
      enqueued: now.enqueued,
      succeeded: now.succeeded,
      stored: await counter.total("noop"),
    };
    rounds.push(round);
    say(
      `  round ${round.round}: ${round.perSecond} POST/s, p50 ${round.p50Ms.toFixed(1)} / p99 ` +
        `${round.p99Ms.toFixed(1)} ms, RSS ${round.rssMb} MB, store ${round.storeMb} MB, ` +
        `enqueued ${round.enqueued} succeeded ${round.succeeded} in store ${round.stored}`,
    );
  }
  return { rounds, accepted };
}

/** Waits until the store has every task ended, then checks the counters against it. */
async function account(process: Process, counter: StoreCounter, accepted: number) {
  let stored = 0;
  let succeeded = 0;
  for (let idle = 0; idle < 120; idle++) {
    [stored, succeeded] = await Promise.all([
      counter.total("noop"),
      counter.count("noop", "succeeded"),
    ]);
    if (stored >= accepted && succeeded === stored) break;
    await sleep(1_000);
  }
  const now = await counters(process.url);
  const problems: string[] = [];
  // wrk counts the answers it read; a request it cut off at a round's end may still be a task.
  if (stored < accepted || stored > accepted + CONNECTIONS * 2 * Math.ceil(TASKS / 1e5)) {
    problems.push(`${accepted} POSTs answered 202, ${stored} tasks in the store`);
  }
  if (succeeded !== stored) problems.push(`${stored - succeeded} tasks did not succeed`);
  for (const name of ["enqueued", "started", "succeeded"] as const) {
    if (now[name] !== stored) {
      problems.push(`warren_tasks_${name}_total is ${now[name]}, the store holds ${stored}`);
    }
  }
  if (now.failed !== 0) problems.push(`warren_tasks_failed_total is ${now.failed}`);
  return { stored, succeeded, counters: now, problems };
}

/** One store's soak. */
async function soak(kind: StoreKind) {
  say(`soak on ${kind}: ${TASKS} tasks in rounds of ${MINUTE} s`);
  const store = await benchStore(kind);
  const process = await warren(
    { BENCH_NOOP_WORKERS: "2", BENCH_NOOP_PREFETCH: "64" },
    [],
    store.storePath ? { storePath: store.storePath } : {},
  );
  const counter = storeCounter(process);
  try {
    const idleBefore = Math.round(await rssMb(process.pid));
    const { rounds, accepted } = await load(process, counter);
    const accounting = await account(process, counter, accepted);
    await sleep(20_000);
    const idleAfter = Math.round(await rssMb(process.pid));
    const first = rounds[0].perSecond;
    const last = rounds.at(-1)!.perSecond;
    const report = {
      kind,
      tasks: TASKS,
      accepted,
      idleBefore,
      idleAfter,
      rounds,
      ...accounting,
      lastToFirst: last / first,
    };
    await Deno.mkdir(RESULTS, { recursive: true });
    await Deno.writeTextFile(`${RESULTS}/soak-${kind}.json`, JSON.stringify(report, null, 2));
    say(
      `${kind}: ${accepted} accepted, ${accounting.stored} stored, ${accounting.succeeded} succeeded; ` +
        `last round ${last}/s vs first ${first}/s (${(100 * last / first).toFixed(0)}%); ` +
        `RSS idle ${idleBefore} MB before, peak ${Math.max(...rounds.map((r) => r.rssMb))} MB, ` +
        `${idleAfter} MB after 20 s idle`,
    );
    return report;
  } finally {
    await counter.close();
    await finish(process);
    await store.drop();
  }
}

const reports = [];
for (const kind of STORES) reports.push(await soak(kind));
const problems = reports.flatMap((r) => r.problems.map((p) => `${r.kind}: ${p}`));
if (problems.length > 0) {
  console.error(`soak failed:\n  ${problems.join("\n  ")}`);
  Deno.exit(1);
}
console.log("soak: every task accounted for; every counter equals the store");
