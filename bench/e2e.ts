/**
 * The benchmark's end-to-end phase on one store: POSTs for a few seconds until the store shows
 * every task succeeded (throughput, and CPU per task of Warren and of the database server), then,
 * if asked, a fixed rate for the latency from 202 to succeeded.
 *
 * @module
 */

import { waitFor } from "../tests/helpers/warren.ts";
import { BODY, CONNECTIONS, cpuMs, finish, say, sleep, warren } from "./harness.ts";
import { type Generator, postLoad } from "./load.ts";
import {
  benchStore,
  databaseCpuMs,
  type StoreCounter,
  storeCounter,
  type StoreKind,
} from "./stores.ts";

/** What one end-to-end run measured. */
export interface EndToEnd {
  store: StoreKind;
  perSecond: number;
  tasks: number;
  /** CPU of the Warren process (api and workers) per task, in µs. */
  warrenCpuUs: number;
  /** CPU of the database server per task, in µs (0 for SQLite: it runs inside Warren). */
  databaseCpuUs: number;
  /** From created to succeeded at a fixed rate, sorted; empty unless asked for. */
  latencies: number[];
}

/** Options of {@linkcode endToEnd}. */
export interface EndToEndOptions {
  generator: Generator;
  seconds: number;
  /** A fixed rate for the latency run, or undefined to skip it. */
  latency?: { rate: number; seconds: number };
}

/** Runs the phase on a fresh Warren over a store of its own, and tears both down. */
export async function endToEnd(kind: StoreKind, options: EndToEndOptions): Promise<EndToEnd> {
  const store = await benchStore(kind);
  const process = await warren({}, [], { storePath: store.storePath });
  const counter = storeCounter(process);
  try {
    const [warrenMs, databaseMs] = [cpuMs(process.pid), databaseCpuMs()];
    const started = performance.now();
    const load = await postLoad({
      generator: options.generator,
      url: `${process.url}/tasks/noop`,
      connections: CONNECTIONS,
      seconds: options.seconds,
      body: BODY,
    });
    if (load.failures > 0) throw new Error(`end to end: ${load.failures} answers were not 202`);
    const tasks = await allSucceeded(counter, load.requests);
    const perSecond = tasks / ((performance.now() - started) / 1000);
    const us = (ms: number) => Math.round((ms * 1000) / tasks);
    const result: EndToEnd = {
      store: kind,
      perSecond,
      tasks,
      warrenCpuUs: us(cpuMs(process.pid) - warrenMs),
      databaseCpuUs: kind === "postgres" ? us(databaseCpuMs() - databaseMs) : 0,
      latencies: [],
    };
    say(`   ${kind}: ${load.requests} tasks got 202, ${tasks} succeeded`);
    if (options.latency) {
      result.latencies = await latencyRun(process.url, counter, tasks, options.latency);
    }
    return result;
  } finally {
    await counter.close();
    await finish(process);
    await store.drop();
  }
}

/** Waits until every accepted task (and any cut off in flight) succeeded; returns how many. */
async function allSucceeded(counter: StoreCounter, accepted: number): Promise<number> {
  const allDone = async () => {
    const total = await counter.total("noop");
    return total >= accepted && (await counter.count("noop", "succeeded")) === total ? total : 0;
  };
  let all = await waitFor(allDone, 120_000, "every accepted task to succeed");
  // A request cut off in flight may still land: wait until the count holds still.
  for (let last = 0; last !== all;) {
    last = all;
    await sleep(500);
    all = await waitFor(allDone, 30_000, "stragglers to succeed");
  }
  if (all - accepted > CONNECTIONS) {
    throw new Error(`end to end: ${all} tasks ran but only ${accepted} got 202`);
  }
  return all;
}

/** POSTs at a fixed rate; returns each task's time from created to succeeded. */
async function latencyRun(
  url: string,
  counter: StoreCounter,
  before: number,
  { rate, seconds }: { rate: number; seconds: number },
): Promise<number[]> {
  say(`   latency at a fixed ${rate} tasks/s for ${seconds} s`);
  const ids: string[] = [];
  const total = rate * seconds;
  const t0 = performance.now();
  const posts: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    posts.push(
      fetch(`${url}/tasks/noop`, { method: "POST", body: BODY }).then(async (r) => {
        const answer = await r.json();
        if (r.status !== 202) throw new Error(`latency run: ${r.status} ${answer.detail}`);
        ids.push(answer.id);
      }),
    );
  }
  await Promise.all(posts);
  const expected = before + total;
  const succeeded = () => counter.count("noop", "succeeded");
  await waitFor(async () => (await succeeded()) >= expected, 60_000, "the latency tasks");
  if ((await succeeded()) !== expected) {
    throw new Error(`end to end: ${await succeeded()} succeeded, expected ${expected}`);
  }
  say(`   ${expected} tasks succeeded, none lost, none extra`);
  return await counter.latencies(ids);
}
