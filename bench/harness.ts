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
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ", in clock ticks
  // of 10 ms (Linux's USER_HZ is 100).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
