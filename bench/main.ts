/**
 * `deno task bench [--quick | --smoke] [--store=sqlite|postgres] [--generator=wrk|fetch] [--connections=64]`:
 * Warren's throughput, latency and footprint beside the broker's own ceiling, measured in one run
 * against the same broker. The end-to-end phase runs on both stores, each with its CPU per task;
 * `--store` picks the one the latency is measured on (default sqlite). Prints a
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
  enqueueMany,
  finish,
  rssMb,
  say,
  sleep,
  warren,
} from "./harness.ts";
import { hasWrk, percentile, postLoad } from "./load.ts";
import { type EndToEnd, endToEnd } from "./e2e.ts";
import { storeCounter, storeFlag } from "./stores.ts";

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
const primary = storeFlag(Deno.args);

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

// 3. End to end, on both stores -------------------------------------------------------------
say(
  `3/6 end to end: ${size.e2eSeconds} s of POSTs (${generator}), until the store shows all ` +
    `succeeded; on ${primary}, then on ${primary === "sqlite" ? "postgres" : "sqlite"}`,
);
const e2e: Record<string, EndToEnd> = {};
for (const kind of [primary, primary === "sqlite" ? "postgres" as const : "sqlite" as const]) {
  e2e[kind] = await endToEnd(kind, {
    generator,
    seconds: size.e2eSeconds,
    latency: kind === primary ? { rate: size.rate, seconds: size.rateSeconds } : undefined,
  });
}
const e2ePerSecond = e2e[primary].perSecond;
const e2eLatencies = e2e[primary].latencies;

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
  const store = storeCounter(process);
  try {
    const body = JSON.stringify({ rounds: size.spinRounds });
    await enqueueMany(process.url, "spin", 2 * workers, body); // warm up the JIT of each worker
    await waitFor(
      async () => (await store.count("spin", "succeeded")) >= 2 * workers,
      60_000,
      "warm-up",
    );
    const started = performance.now();
    await enqueueMany(process.url, "spin", size.spinTasks, body);
    const expected = size.spinTasks + 2 * workers;
    await waitFor(
      async () => (await store.count("spin", "succeeded")) >= expected,
      300_000,
      "spin tasks",
    );
    cpuPerSecond[workers] = size.spinTasks / ((performance.now() - started) / 1000);

    if (workers === 2) {
      say(`   isolation: ${size.healthzRequests} GET /healthz while both workers spin`);
      await enqueueMany(process.url, "spin", 8, JSON.stringify({ rounds: size.spinRounds * 50 }));
      await waitFor(
        async () => (await store.count("spin", "running")) === 2,
        30_000,
        "both workers busy",
      );
      const latencies: number[] = [];
      for (let i = 0; i < size.healthzRequests; i++) {
        const t0 = performance.now();
        const response = await fetch(`${process.url}/healthz`);
        await response.body?.cancel();
        latencies.push(performance.now() - t0);
      }
      if ((await store.count("spin", "running")) < 1) {
        throw new Error("isolation: the workers went idle");
      }
      healthzP99 = percentile(latencies.sort((a, b) => a - b), 99);
    }
  } finally {
    await store.close();
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
  store: primary,
  e2e_per_s: round(e2ePerSecond, 0),
  e2e_per_s_sqlite: round(e2e.sqlite.perSecond, 0),
  e2e_per_s_postgres: round(e2e.postgres.perSecond, 0),
  e2e_postgres_of_sqlite: round(e2e.postgres.perSecond / e2e.sqlite.perSecond, 2),
  cpu_us_per_task_sqlite: { warren: e2e.sqlite.warrenCpuUs, database: 0 },
  cpu_us_per_task_postgres: {
    warren: e2e.postgres.warrenCpuUs,
    database: e2e.postgres.databaseCpuUs,
  },
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
    `end to end (HTTP to succeeded, ${primary})`,
    `${results.e2e_per_s} tasks/s`,
    ratio(e2ePerSecond),
    check(e2ePerSecond >= 0.35 * ceiling, ">= 35%"),
  ],
  [
    "end to end, SQLite store",
    `${results.e2e_per_s_sqlite} tasks/s`,
    `CPU ${e2e.sqlite.warrenCpuUs} µs/task`,
    "",
  ],
  [
    "end to end, PostgreSQL store",
    `${results.e2e_per_s_postgres} tasks/s`,
    `CPU ${e2e.postgres.warrenCpuUs} + ${e2e.postgres.databaseCpuUs} (db) µs/task`,
    check(
      results.e2e_postgres_of_sqlite >= 0.8,
      `>= 80% of SQLite: ${results.e2e_postgres_of_sqlite}`,
    ),
  ],
  [
    `e2e latency p50 / p99 at ${size.rate}/s (${primary})`,
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
