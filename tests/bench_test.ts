/**
 * The benchmark itself works: a smoke run of every phase finishes, accounts for every task (the
 * run fails otherwise) and writes every documented key. No figure is asserted: timings on a
 * shared machine are noise.
 */

import assert from "node:assert/strict";
import { ROOT } from "./helpers/warren.ts";

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
