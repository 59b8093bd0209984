/**
 * The benchmark itself works: a smoke run of every phase finishes, accounts for every task (the
 * run fails otherwise) and writes every documented key. No figure is asserted: timings on a
 * shared machine are noise.
 */

import assert from "node:assert/strict";
import { ROOT } from "./helpers/warren.ts";
import { threadsMs } from "../bench/harness.ts";

const KEYS = [
  "ceiling_per_s",
  "enqueue_per_s",
  "enqueue_p99_ms",
  "e2e_per_s",
  "e2e_per_s_sqlite",
  "e2e_per_s_postgres",
  "e2e_postgres_of_sqlite",
  "e2e_p50_ms",
  "e2e_p99_ms",
  "healthz_p99_ms_cpu_load",
  "cpu_per_s_1_worker",
  "cpu_per_s_2_workers",
  "ready_ms",
  "rss_idle_mb",
  "rss_per_worker_mb",
];

Deno.test("bench: a smoke run accounts for every task and writes every figure", async () => {
  const results = await Deno.makeTempDir();
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "bench/main.ts", "--smoke", "--generator=fetch"],
    cwd: ROOT,
    env: { BENCH_RESULTS: results, NO_COLOR: "1" },
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, output);
  assert.match(output, /none lost, none extra/);
  assert.match(output, /all on the queue/);
  const json = JSON.parse(await Deno.readTextFile(`${results}/smoke.json`));
  for (const key of KEYS) {
    assert.equal(typeof json[key], "number", key);
    assert.ok(Number.isFinite(json[key]) && json[key] > 0, `${key} = ${json[key]}`);
  }
  assert.equal(json.load_generator, "deno-fetch");
  assert.ok(json.cpu_us_per_task_sqlite.warren > 0, "CPU per task on SQLite");
  assert.ok(json.cpu_us_per_task_postgres.warren > 0, "CPU per task on PostgreSQL");
  assert.ok(json.cpu_us_per_task_postgres.database > 0, "the database server's CPU per task");
  assert.match(json.machine.description, /\d+ × /);
  assert.match(json.machine.broker, /RabbitMQ \d+\.\d+/);
  await Deno.remove(results, { recursive: true });
});

Deno.test("bench: a process's CPU is split by thread, a busy Web Worker's apart from the main thread's", async () => {
  const spin = `const end = Date.now() + 300; while (Date.now() < end); self.postMessage("spun");`;
  const before = threadsMs(Deno.pid);
  const worker = new Worker(`data:text/javascript,${encodeURIComponent(spin)}`, { type: "module" });
  try {
    await new Promise((resolve) => worker.onmessage = resolve);
    const after = threadsMs(Deno.pid);
    assert.ok(after.has("main"), `the main thread is named: ${[...after.keys()]}`);
    const spun = [...after].filter(([name, ms]) =>
      /^worker-\d+$/.test(name) && ms - (before.get(name) ?? 0) >= 200
    );
    assert.equal(spun.length, 1, `one Web Worker thread used the 300 ms: ${[...after]}`);
  } finally {
    worker.terminate();
  }
});
