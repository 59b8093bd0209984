/**
 * What the benchmark's phases share: starting Warren with the bench handlers, enqueueing, reading a process's memory and CPU time.
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import {
  deleteTopology,
  getJson,
  type Process,
  type StartOptions,
  startWarren,
  uniquePrefix,
  waitFor,
} from "../tests/helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./handlers", import.meta.url));
const BENCH_HANDLERS = ["noop", "spin"];

/** The payload of every no-op task. */
export const BODY = '{"n":1}';
/**
 * A whole-number flag of the command line, `--name=N` (from 1 to `max`), or `fallback`.
 *
 * @example
 * ```ts
 * const seconds = countFlag("seconds", 10); // --seconds=30 gives 30
 * ```
 */
export function countFlag(name: string, fallback: number, max = 10_000_000): number {
  const flag = Deno.args.find((arg) => arg.startsWith(`--${name}=`));
  const n = Number(flag?.slice(name.length + 3) ?? fallback);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new Error(`--${name} must be a whole number from 1 to ${max} (got ${flag})`);
  }
  return n;
}

/** Keep-alive connections of the HTTP load: `--connections=N`, default 64. */
export const CONNECTIONS = countFlag("connections", 64, 10_000);

/** Progress on standard error, so the table on standard output stays clean. */
export function say(text: string): void {
  console.error(`bench: ${text}`);
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts Warren with the bench handlers and its own prefix (waits for ready unless role api). */
export async function warren(
  env: Record<string, string> = {},
  args: string[] = [],
  options: StartOptions = {},
): Promise<Process> {
  return await startWarren({
    handlersDir: HANDLERS,
    prefix: uniquePrefix("bench"),
    args,
    ready: !args.includes("--role=api"),
    contract: false, // measured as it is, without the test suite's contract proxy
    ...options,
    env: { WARREN_SHUTDOWN_GRACE: "2s", ...env },
  });
}

/**
 * Starts an api-only Warren (no workers, so tasks stay queued) and waits until it is connected to
 * the broker (it is never "ready": no handler has a consumer).
 */
export async function apiOnly(options: StartOptions = {}): Promise<Process> {
  const api = await warren({}, ["--role=api"], options);
  await waitFor(
    async () => {
      const [, body] = await getJson(`${api.url}/readyz`);
      return !body.reasons?.includes("not connected to the broker");
    },
    20_000,
    "the api to connect",
  );
  return api;
}

/** Stops a Warren and deletes what its prefix declared. */
export async function finish(process: Process): Promise<void> {
  await process.stop();
  await deleteTopology(process.prefix, BENCH_HANDLERS);
}

/** POSTs `count` tasks from `concurrency` connections; returns their ids (all must be 202). */
export async function enqueueMany(url: string, handler: string, count: number, body: string) {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next++ < count) {
      const response = await fetch(`${url}/tasks/${handler}`, { method: "POST", body });
      const answer = await response.json();
      if (response.status !== 202) {
        throw new Error(`enqueue answered ${response.status}: ${answer.detail}`);
      }
      ids.push(answer.id);
    }
  }));
  return ids;
}

/** Resident memory of a process, in MB. */
export async function rssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kb / 1024;
}

/** CPU time (user + system) a process has used so far, in ms (from /proc). */
export function cpuMs(pid: number): number {
  return statMs(Deno.readTextFileSync(`/proc/${pid}/stat`));
}

/** Linux's names of a Deno process's threads (cut to 15 characters), as a report says them. */
const THREAD_NAMES: Record<string, string> = { deno: "main", "V8 DefaultWorke": "V8" };

/**
 * CPU time each thread of a process has used so far, in ms, summed by thread name (`main`, a Web
 * Worker's `worker-N`, and `V8`, its helper threads for GC and compiling).
 */
export function threadsMs(pid: number): Map<string, number> {
  const threads = new Map<string, number>();
  for (const { name } of Deno.readDirSync(`/proc/${pid}/task`)) {
    let stat;
    try {
      stat = Deno.readTextFileSync(`/proc/${pid}/task/${name}/stat`);
    } catch {
      continue; // the thread ended meanwhile
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const thread = THREAD_NAMES[comm] ?? comm;
    threads.set(thread, (threads.get(thread) ?? 0) + statMs(stat));
  }
  return threads;
}

/** utime + stime of a `/proc` stat line, in ms. */
function statMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ", in clock ticks
  // of 10 ms (Linux's USER_HZ is 100).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
