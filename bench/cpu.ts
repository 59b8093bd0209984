/**
 * `deno task bench:cpu [--generator=fetch] [--connections=64] [--seconds=5]`: where the CPU time
 * of a task goes. Enqueues over HTTP for a few seconds (`--seconds`; longer runs reach the steady
 * state of the caches that keep the last few thousand tasks) against an api-only Warren, then
 * lets a worker-only Warren run them all, and reports CPU µs per task of each process and of the
 * broker (found as `beam.smp`), read from /proc, and of each thread of the two Warren processes
 * (main thread, Web Workers, V8's helpers). Linux only; a broker on another machine is reported as
 * such.
 *
 * @module
 */

import { waitFor } from "../tests/helpers/warren.ts";
import {
  apiOnly,
  BODY,
  CONNECTIONS,
  countFlag,
  cpuMs,
  finish,
  say,
  sleep,
  threadsMs,
  warren,
} from "./harness.ts";
import { hasWrk, postLoad } from "./load.ts";
import { storeCounter } from "./stores.ts";

const SECONDS = countFlag("seconds", 5, 600);
const generator = Deno.args.includes("--generator=fetch") || !(await hasWrk())
  ? "deno-fetch"
  : "wrk";
const brokerPid = await findBroker();
const broker = () => brokerPid ? cpuMs(brokerPid) : NaN;

const api = await apiOnly();
let worker;
try {
  const store = storeCounter(api);

  say(`enqueue: ${SECONDS} s of POST /tasks/noop from ${CONNECTIONS} connections (${generator})`);
  let [apiMs, brokerMs, apiThreads] = [cpuMs(api.pid), broker(), threadsMs(api.pid)];
  const load = await postLoad({
    generator,
    url: `${api.url}/tasks/noop`,
    connections: CONNECTIONS,
    seconds: SECONDS,
    body: BODY,
  });
  // Requests cut off in flight by the load generator may still land: wait until the count holds.
  let tasks = 0;
  for (let seen = -1; seen !== tasks; await sleep(500)) {
    seen = tasks;
    tasks = await store.total("noop");
  }
  const enqueue = { api: cpuMs(api.pid) - apiMs, broker: broker() - brokerMs };
  const enqueueThreads = since(apiThreads, threadsMs(api.pid));

  say(`run: a worker-only Warren runs all ${tasks} tasks`);
  [apiMs, brokerMs, apiThreads] = [cpuMs(api.pid), broker(), threadsMs(api.pid)];
  worker = await warren({}, ["--role=worker"], { prefix: api.prefix, ready: false });
  const [workerMs, workerThreads] = [cpuMs(worker.pid), threadsMs(worker.pid)];
  await waitFor(
    async () => (await store.count("noop", "succeeded")) >= tasks,
    120_000,
    "every task to run",
  );
  const runThreads = {
    worker: since(workerThreads, threadsMs(worker.pid)),
    api: since(apiThreads, threadsMs(api.pid)),
  };
  const run = {
    worker: cpuMs(worker.pid) - workerMs,
    api: cpuMs(api.pid) - apiMs,
    broker: broker() - brokerMs,
  };
  await store.close();

  const us = (ms: number) => Number.isNaN(ms) ? "n/a" : `${Math.round((ms * 1000) / tasks)} µs`;
  console.log(`\nCPU per task, ${tasks} no-op tasks (${Math.round(load.perSecond)} POST/s)\n`);
  console.log(`enqueue  api process (HTTP, publish, store)   ${us(enqueue.api)}`);
  console.log(`         broker (publish, confirm)            ${us(enqueue.broker)}`);
  console.log(`run      worker process (consume, events)     ${us(run.worker)}`);
  console.log(`         api process (record events)          ${us(run.api)}`);
  console.log(`         broker (deliver, ack, events)        ${us(run.broker)}`);
  const total = enqueue.api + enqueue.broker + run.worker + run.api + run.broker;
  console.log(`total                                         ${us(total)}`);
  console.log(
    "\nby thread (main; worker-N: a Web Worker; V8: its helper threads for GC and compiling)",
  );
  const threads = (what: string, split: Map<string, number>) =>
    console.log(
      `${what.padEnd(25)}${[...split].map(([name, ms]) => `${name} ${us(ms)}`).join(", ")}`,
    );
  threads("enqueue  api process", enqueueThreads);
  threads("run      worker process", runThreads.worker);
  threads("         api process", runThreads.api);
} finally {
  if (worker) await worker.stop();
  await finish(api);
}

/** The CPU ms each thread name used between two readings, busiest first (idle ones left out). */
function since(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const used = [...after].map(([name, ms]) => [name, ms - (before.get(name) ?? 0)] as const);
  return new Map(used.filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]));
}

/** The broker's process id when it runs on this machine. */
async function findBroker(): Promise<number | undefined> {
  try {
    const { stdout } = await new Deno.Command("pgrep", { args: ["-o", "beam.smp"] }).output();
    const pid = Number(new TextDecoder().decode(stdout).trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
