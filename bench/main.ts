/**
 * `deno task bench [--quick | --smoke] [--generator=wrk|fetch] [--connections=64]`: Warren's throughput, latency and
 * footprint beside the broker's own ceiling, measured in one run against the same broker. Prints a
 * table, writes bench/results/<timestamp>.json and latest.json (`--quick`: quick.json, `--smoke`:
 * smoke.json; `BENCH_RESULTS` names another folder), and fails if any task is unaccounted for.
 * `--smoke` is a few seconds of each phase, for the test suite: it proves the benchmark, not Warren.
 *
 * @module
 */

import { cpus, totalmem } from "node:os";
import { fileURLToPath as fromFileUrl } from "node:url";
import { AMQP_URL, getJson, uniquePrefix, waitFor } from "../tests/helpers/warren.ts";
import { measureCeiling } from "./ceiling.ts";
import {
  apiOnly,
  BODY,
  CONNECTIONS,
  counter,
  enqueueMany,
  finish,
  rssMb,
  say,
  sleep,
  warren,
} from "./harness.ts";
import { hasWrk, percentile, postLoad } from "./load.ts";

const mode = Deno.args.includes("--smoke")
  ? "smoke"
  : Deno.args.includes("--quick")
  ? "quick"
  : "full";
const RESULTS = Deno.env.get("BENCH_RESULTS") ?? fromFileUrl(new URL("./results", import.meta.url));

const SIZES = {
  smoke: {
    ceilingMessages: 1_000,
    enqueueSeconds: 1,
    e2eSeconds: 1,
    rate: 50,
    rateSeconds: 1,
    spinTasks: 4,
    spinRounds: 2_000_000,
    healthzRequests: 50,
  },
  quick: {
    ceilingMessages: 10_000,
    enqueueSeconds: 4,
    e2eSeconds: 4,
    rate: 200,
    rateSeconds: 3,
    spinTasks: 30,
    spinRounds: 24_000_000,
    healthzRequests: 300,
  },
  full: {
    ceilingMessages: 50_000,
    enqueueSeconds: 10,
    e2eSeconds: 10,
    rate: 200,
    rateSeconds: 8,
    spinTasks: 100,
    spinRounds: 24_000_000,
    healthzRequests: 1_000,
  },
};
const size = SIZES[mode];

// 1. The ceiling ------------------------------------------------------------------------------
say("1/6 ceiling: raw amqplib, confirmed persistent publishes, manual acks");
const { perSecond: ceiling, broker } = await measureCeiling({
  amqpUrl: AMQP_URL,
  queue: `${uniquePrefix("bench")}.ceiling`,
  messages: size.ceilingMessages,
  body: new TextEncoder().encode(BODY),
  window: 1000,
  prefetch: 500,
});

// 2. Enqueue ----------------------------------------------------------------------------------
const generator = Deno.args.includes("--generator=fetch") || !(await hasWrk())
  ? "deno-fetch"
  : "wrk";
say(
  `2/6 enqueue: POST /tasks/noop, ${CONNECTIONS} keep-alive connections (${generator}), role api`,
);
const api = await apiOnly();
let enqueue;
try {
  const url = `${api.url}/tasks/noop`;
  const warm = await postLoad({ generator, url, connections: CONNECTIONS, seconds: 1, body: BODY });
  enqueue = await postLoad({
    generator,
    url,
    connections: CONNECTIONS,
    seconds: size.enqueueSeconds,
    body: BODY,
  });
  const accepted = warm.requests - warm.failures + enqueue.requests - enqueue.failures;
  if (warm.failures + enqueue.failures > 0) {
    throw new Error(`enqueue: ${warm.failures + enqueue.failures} answers were not 202`);
  }
  const [, handlers] = await getJson(`${api.url}/handlers`);
  const depth = handlers.handlers.find((h: { name: string }) => h.name === "noop").queue.messages;
  // wrk stops with up to one request in flight per connection in each run: those may be queued
  // without their 202 having been read. Every 202, though, must be on the queue.
  const cutOff = depth - accepted;
  if (cutOff < 0 || cutOff > 2 * CONNECTIONS) {
    throw new Error(`enqueue: ${accepted} tasks got 202 but ${depth} are queued`);
  }
  say(`   ${accepted} tasks got 202, all on the queue (+${cutOff} cut off in flight by wrk)`);
} finally {
  await finish(api);
}

// 3. End to end -------------------------------------------------------------------------------
say(
  `3/6 end to end: ${size.e2eSeconds} s of POSTs (${generator}), until the store shows all succeeded`,
);
let e2ePerSecond: number;
let e2eLatencies: number[];
let e2eTasks = 0;
{
  const process = await warren();
  const store = counter(process);
  try {
    const started = performance.now();
    const load = await postLoad({
      generator,
      url: `${process.url}/tasks/noop`,
      connections: CONNECTIONS,
      seconds: size.e2eSeconds,
      body: BODY,
    });
    if (load.failures > 0) throw new Error(`end to end: ${load.failures} answers were not 202`);
    // The store records each task before its 202; requests cut off in flight may add a few.
    const accepted = load.requests;
    const allDone = () => {
      const total = store.total("noop");
      return total >= accepted && store.count("noop", "succeeded") === total ? total : 0;
    };
    let all = await waitFor(allDone, 120_000, "every accepted task to succeed");
    e2ePerSecond = all / ((performance.now() - started) / 1000);
    // A request cut off in flight may still land: wait until the count holds still.
    for (let last = 0; last !== all;) {
      last = all;
      await sleep(500);
      all = await waitFor(allDone, 30_000, "stragglers to succeed");
    }
    if (all - accepted > CONNECTIONS) {
      throw new Error(`end to end: ${all} tasks ran but only ${accepted} got 202`);
    }
    e2eTasks = all;
    say(`   ${accepted} tasks got 202, ${all} succeeded (+${all - accepted} cut off in flight)`);

    say(`   latency at a fixed ${size.rate} tasks/s for ${size.rateSeconds} s`);
    const ids: string[] = [];
    const total = size.rate * size.rateSeconds;
    const t0 = performance.now();
    const posts: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / size.rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      posts.push(
        fetch(`${process.url}/tasks/noop`, { method: "POST", body: BODY }).then(async (r) => {
          const answer = await r.json();
          if (r.status !== 202) throw new Error(`latency run: ${r.status} ${answer.detail}`);
          ids.push(answer.id);
        }),
      );
    }
    await Promise.all(posts);
    const expected = e2eTasks + total;
    await waitFor(() => store.count("noop", "succeeded") >= expected, 60_000, "the latency tasks");
    const succeeded = store.count("noop", "succeeded");
    if (succeeded !== expected) {
      throw new Error(`end to end: ${succeeded} succeeded, expected ${expected}`);
    }
    e2eLatencies = store.latencies(ids);
    say(`   ${succeeded} tasks succeeded, none lost, none extra`);
  } finally {
    store.close();
    await finish(process);
  }
}

// 4 and 5. Scaling and isolation ----------------------------------------------------------
const cpuPerSecond: Record<number, number> = {};
let healthzP99 = NaN;
for (const workers of [1, 2]) {
  say(
    `${
      workers === 1 ? "4" : "5"
    }/6 CPU-bound: ${size.spinTasks} spin tasks with ${workers} worker(s)`,
  );
  const process = await warren({ BENCH_SPIN_WORKERS: String(workers) });
  const store = counter(process);
  try {
    const body = JSON.stringify({ rounds: size.spinRounds });
    await enqueueMany(process.url, "spin", 2 * workers, body); // warm up the JIT of each worker
    await waitFor(() => store.count("spin", "succeeded") >= 2 * workers, 60_000, "warm-up");
    const started = performance.now();
    await enqueueMany(process.url, "spin", size.spinTasks, body);
    const expected = size.spinTasks + 2 * workers;
    await waitFor(() => store.count("spin", "succeeded") >= expected, 300_000, "spin tasks");
    cpuPerSecond[workers] = size.spinTasks / ((performance.now() - started) / 1000);

    if (workers === 2) {
      say(`   isolation: ${size.healthzRequests} GET /healthz while both workers spin`);
      await enqueueMany(process.url, "spin", 8, JSON.stringify({ rounds: size.spinRounds * 50 }));
      await waitFor(() => store.count("spin", "running") === 2, 30_000, "both workers busy");
      const latencies: number[] = [];
      for (let i = 0; i < size.healthzRequests; i++) {
        const t0 = performance.now();
        const response = await fetch(`${process.url}/healthz`);
        await response.body?.cancel();
        latencies.push(performance.now() - t0);
      }
      if (store.count("spin", "running") < 1) throw new Error("isolation: the workers went idle");
      healthzP99 = percentile(latencies.sort((a, b) => a - b), 99);
    }
  } finally {
    store.close();
    await finish(process);
  }
}

// 6. Footprint --------------------------------------------------------------------------------
say("6/6 footprint: time to ready, memory idle and per added worker");
const readyTimes: number[] = [];
let rssIdle = NaN;
let rssPerWorker = NaN;
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const process = await warren({}, ["--role=all"]);
  readyTimes.push(performance.now() - t0);
  if (i === 0) {
    await sleep(1000);
    rssIdle = await rssMb(process.pid);
  }
  await finish(process);
}
{
  const process = await warren({ BENCH_NOOP_WORKERS: "9" });
  await sleep(1000);
  rssPerWorker = (await rssMb(process.pid) - rssIdle) / 8;
  await finish(process);
}

// Report --------------------------------------------------------------------------------------
const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const results = {
  timestamp: new Date().toISOString(),
  mode,
  machine: {
    description: `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, ${Deno.build.os} ${Deno.build.arch}`,
    cpus: cpus().length,
    deno: Deno.version.deno,
    broker: `${broker} at ${AMQP_URL.replace(/\/\/[^@]*@/, "//")}`,
  },
  load_generator: generator,
  connections: CONNECTIONS,
  ceiling_per_s: round(ceiling, 0),
  enqueue_per_s: round(enqueue.perSecond, 0),
  enqueue_p50_ms: round(enqueue.p50Ms, 2),
  enqueue_p99_ms: round(enqueue.p99Ms, 2),
  e2e_per_s: round(e2ePerSecond, 0),
  e2e_p50_ms: round(percentile(e2eLatencies, 50), 1),
  e2e_p99_ms: round(percentile(e2eLatencies, 99), 1),
  e2e_rate_per_s: size.rate,
  healthz_p99_ms_cpu_load: round(healthzP99, 2),
  cpu_per_s_1_worker: round(cpuPerSecond[1], 2),
  cpu_per_s_2_workers: round(cpuPerSecond[2], 2),
  ready_ms: round(readyTimes.sort((a, b) => a - b)[1], 0),
  rss_idle_mb: round(rssIdle),
  rss_per_worker_mb: round(rssPerWorker),
};

const ratio = (n: number) => `${Math.round((100 * n) / ceiling)}% of ceiling`;
const rows: [string, string, string, string][] = [
  ["ceiling (raw amqplib)", `${results.ceiling_per_s} msg/s`, "100%", ""],
  [
    "enqueue (POST, 202)",
    `${results.enqueue_per_s} req/s`,
    ratio(enqueue.perSecond),
    check(enqueue.perSecond >= 0.5 * ceiling, ">= 50%"),
  ],
  ["enqueue latency p50 / p99", `${results.enqueue_p50_ms} / ${results.enqueue_p99_ms} ms`, "", ""],
  [
    "end to end (HTTP to succeeded)",
    `${results.e2e_per_s} tasks/s`,
    ratio(e2ePerSecond),
    check(e2ePerSecond >= 0.35 * ceiling, ">= 35%"),
  ],
  [
    `e2e latency p50 / p99 at ${size.rate}/s`,
    `${results.e2e_p50_ms} / ${results.e2e_p99_ms} ms`,
    "",
    "",
  ],
  [
    "GET /healthz p99, workers busy",
    `${results.healthz_p99_ms_cpu_load} ms`,
    "",
    check(healthzP99 < 10, "< 10 ms"),
  ],
  ["CPU tasks/s, 1 worker", `${results.cpu_per_s_1_worker}`, "", ""],
  [
    "CPU tasks/s, 2 workers",
    `${results.cpu_per_s_2_workers}`,
    `${round(cpuPerSecond[2] / cpuPerSecond[1], 2)}x`,
    check(cpuPerSecond[2] >= 1.8 * cpuPerSecond[1], ">= 1.8x"),
  ],
  ["start-up to ready", `${results.ready_ms} ms`, "", ""],
  ["memory idle (RSS)", `${results.rss_idle_mb} MB`, "", ""],
  ["memory per added worker", `${results.rss_per_worker_mb} MB`, "", ""],
];

function check(ok: boolean, target: string): string {
  return `${ok ? "met" : "MISSED"} (${target})`;
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
console.log(`\nWarren benchmark (${mode}): ${results.machine.description}`);
console.log(`load generator: ${generator}, ${CONNECTIONS} connections\n`);
for (const row of rows) {
  console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
}

await Deno.mkdir(RESULTS, { recursive: true });
const json = JSON.stringify(results, null, 2) + "\n";
const files = mode === "full"
  ? [`${results.timestamp.replace(/[:.]/g, "-")}.json`, "latest.json"]
  : [`${mode}.json`];
for (const file of files) await Deno.writeTextFile(`${RESULTS}/${file}`, json);
console.log(`\nwrote ${files.map((file) => `${RESULTS}/${file}`).join(", ")}`);
