/**
 * Schedules: a handler's `config.schedule` makes one task per tick. The ticks and the misfire
 * rule in parts; then a per-second schedule with three processes on PostgreSQL (no tick doubled,
 * none skipped, one of them restarted), a restart after downtime on SQLite (the missed ticks run
 * once), `GET /schedules` and the dashboard's table of them.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { resolveConfig } from "../lib/handler.ts";
import { idTime, scheduleTaskId } from "../lib/id.ts";
import { dueTicks, nextTick, readSchedule } from "../lib/schedule.ts";
import { launchBrowser } from "./helpers/browser.ts";
import { createDatabase } from "./helpers/postgres.ts";
import {
  deleteTopology,
  fleet,
  getJson,
  startWarren,
  uniquePrefix,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./fixtures/schedules", import.meta.url));
const NAMES = ["nightly", "tick"];
const everySecond = readSchedule("* * * * * *", "s");

Deno.test("schedules: cron of five or six fields, a time zone, a payload; clear refusals", () => {
  assert.deepEqual(readSchedule("*/5 * * * *", "s"), {
    cron: "*/5 * * * *",
    timezone: undefined,
    payload: {},
  });
  const paris = readSchedule({ cron: "0 3 * * *", timezone: "Europe/Paris" }, "s");
  // 03:00 in Paris is 02:00 UTC in summer, 01:00 in winter.
  assert.equal(
    new Date(nextTick(paris, Date.UTC(2026, 6, 1))!).toISOString(),
    "2026-07-01T01:00:00.000Z",
  );
  assert.equal(
    new Date(nextTick(paris, Date.UTC(2026, 0, 1))!).toISOString(),
    "2026-01-01T02:00:00.000Z",
  );
  const refused = (config: unknown, pattern: RegExp) =>
    assert.throws(() => resolveConfig(config, "h.ts"), pattern);
  refused({ schedule: "* * *" }, /^HandlerError: h\.ts: config\.schedule: "\* \* \*" has 3 fields/);
  refused({ schedule: "0 0 * * * * 2030" }, /has 7 fields/);
  refused({ schedule: "61 * * * *" }, /h\.ts: config\.schedule: "61 \* \* \* \*": /);
  refused({ schedule: { cron: "* * * * *", timezone: "Mars/Base" } }, /in Mars\/Base: .*timezone/);
  refused({ schedule: { cron: "* * * * *", every: 5 } }, /unknown fields: every/);
  refused(
    { schema: { type: "object", required: ["n"] }, schedule: { cron: "* * * * *" } },
    /config\.schedule\.payload does not meet config\.schema: .*n/,
  );
});

Deno.test("schedules: late ticks each run; after a long downtime they run once", () => {
  assert.deepEqual(dueTicks(everySecond, 10_000, 10_500, 60_000), { kind: "none" });
  assert.deepEqual(dueTicks(everySecond, 10_000, 12_500, 60_000), {
    kind: "each",
    ticks: [11_000, 12_000],
  });
  assert.deepEqual(dueTicks(everySecond, 10_000, 100_000, 5_000), {
    kind: "coalesced",
    tick: 100_000,
    missed: 89,
  });
  const hourly = readSchedule("0 * * * *", "s");
  const hour = 3_600_000;
  assert.deepEqual(dueTicks(hourly, 0, 5 * hour + 1_000, 60_000), {
    kind: "coalesced",
    tick: 5 * hour,
    missed: 4,
  }, "a sparse schedule finds its latest tick too");
  const id = scheduleTaskId("tick", 1_767_225_600_000);
  assert.equal(id, scheduleTaskId("tick", 1_767_225_600_000), "the same on every process");
  assert.notEqual(id, scheduleTaskId("tock", 1_767_225_600_000));
  assert.equal(idTime(id), 1_767_225_600_000, "its time is the tick's");
});

/** The ticks of the runs in a log of task ids, in order; throws on a run twice. */
async function ticksRun(log: string): Promise<number[]> {
  const ids = (await Deno.readTextFile(log)).trim().split("\n").filter(Boolean);
  assert.equal(new Set(ids).size, ids.length, "no tick ran twice");
  return ids.map((id) => idTime(id)!).sort((a, b) => a - b);
}

/** The gaps between consecutive ticks of a per-second schedule. */
function gaps(ticks: number[]): number[] {
  return ticks.slice(1).map((tick, i) => tick - ticks[i]).filter((gap) => gap !== 1_000);
}

Deno.test("schedules: three processes on PostgreSQL make one task per tick", async () => {
  const db = await createDatabase();
  const log = await Deno.makeTempFile();
  const processes = fleet(uniquePrefix("schedules"), HANDLERS);
  try {
    const env = { WARREN_STORE: db.url, TICK_LOG: log };
    const nodes = [];
    for (let i = 0; i < 3; i++) nodes.push(await processes.start("all", env));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await nodes[0].stop(); // through restarts, too
    nodes[0] = await processes.start("all", env);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const [status, body] = await getJson(`${nodes[1].url}/schedules`);
    assert.equal(status, 200);
    const last = body.schedules.find((s: { handler: string }) => s.handler === "tick").last_run;
    await waitForState(nodes[2].url, last.task_id, "succeeded");
    await processes.stop(NAMES);
    const ticks = await ticksRun(log);
    assert.ok(ticks.length >= 6, `a task a second (${ticks.length})`);
    assert.deepEqual(gaps(ticks), [], "no tick skipped while they ran");
  } finally {
    await processes.stop(NAMES);
    await db.drop();
    await Deno.remove(log);
  }
});

Deno.test("schedules: after downtime the missed ticks run once; GET /schedules", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("schedules");
  const log = await Deno.makeTempFile();
  const storePath = `${await Deno.makeTempDir()}/warren.db`;
  const start = () =>
    startWarren({
      prefix,
      storePath,
      handlersDir: HANDLERS,
      env: { TICK_LOG: log, WARREN_SCHEDULE_MISFIRE: "2s" },
    });
  let warren = await start();
  try {
    await waitFor(async () => (await Deno.readTextFile(log)).split("\n").length > 3, 10_000);
    await warren.stop();
    await new Promise((resolve) => setTimeout(resolve, 6_000)); // everything down
    warren = await start();
    await waitFor(
      async () => gaps(await ticksRun(log)).length === 1 && (await ticksRun(log)).length > 6,
      10_000,
      "runs after the restart",
    );
    const ticks = await ticksRun(log);
    const [gap] = gaps(ticks);
    assert.ok(gap >= 5_000, `the ticks missed while down ran once, not each (a gap of ${gap} ms)`);
    assert.match(warren.output(), /tick: one task for the tick of .* and the \d+ missed before it/);

    const [status, body] = await getJson(`${warren.url}/schedules`);
    assert.equal(status, 200);
    const byName = new Map(body.schedules.map((s: { handler: string }) => [s.handler, s]));
    const nightly = byName.get("nightly") as Record<string, unknown>;
    assert.equal(nightly.cron, "0 3 * * *");
    assert.equal(nightly.timezone, "Europe/Paris");
    assert.deepEqual(nightly.payload, { report: "nightly" });
    assert.match(String(nightly.next_run), /T0[12]:00:00\.000Z$/);
    assert.equal(nightly.last_run, null);
    const tick = byName.get("tick") as { last_run: { task_id: string; at: string } };
    assert.equal(idTime(tick.last_run.task_id), Date.parse(tick.last_run.at));

    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(warren.url);
      const row = (name: string) => `#schedule-list tr[data-handler="${name}"]`;
      await page.waitForSelector(`${row("tick")} button`);
      const text = await page.textContent(row("nightly")) ?? "";
      assert.match(text, /0 3 \* \* \* \(Europe\/Paris\)/);
      assert.match(text, /never/, "the dashboard shows the schedules");
    } finally {
      await browser.close();
    }
  } finally {
    await warren.stop();
    await deleteTopology(prefix, NAMES);
    await Deno.remove(log);
  }
});
