/**
 * The supervisor's parts that need no Web Worker: the workers' health, the attempts' deadlines.
 */

import assert from "node:assert/strict";
import { SLOT_MS } from "../lib/coarse_timer.ts";
import { createDeadlines } from "../lib/worker/deadlines.ts";
import { CRASH_LOOP_DEATHS, createHealth } from "../lib/worker/health.ts";

Deno.test("health: restarts counted, crash looping after a few deaths in a minute", () => {
  let now = 0;
  const health = createHealth(() => now);
  assert.deepEqual(health.of("h"), { restarts: 0, crashLooping: false, lastError: undefined });
  for (let i = 0; i < CRASH_LOOP_DEATHS; i++) health.died("h", `death ${i}`, true);
  assert.deepEqual(health.of("h"), { restarts: 3, crashLooping: true, lastError: "death 2" });
  now += 61_000;
  assert.equal(health.of("h").crashLooping, false, "a minute later it is not looping any more");
  health.died("h", "on the way out", false);
  assert.deepEqual(health.of("h"), {
    restarts: 3,
    crashLooping: false,
    lastError: "on the way out",
  });
  assert.equal(health.of("other").restarts, 0);
});

/** Long enough for a 10 ms deadline to have fired: deadlines fire at most a slot late. */
const PAST = 10 + SLOT_MS + 150;

Deno.test("deadlines: an armed one fires unless cleared", async () => {
  const deadlines = createDeadlines();
  const fired: string[] = [];
  deadlines.arm("a", 10, () => fired.push("a"));
  deadlines.arm("b", 10, () => fired.push("b"));
  deadlines.arm("c", 10, () => fired.push("c"));
  deadlines.clear("b");
  await new Promise((resolve) => setTimeout(resolve, PAST));
  assert.deepEqual(fired, ["a", "c"]);
  deadlines.arm("d", 10, () => fired.push("d"));
  deadlines.clearAll();
  await new Promise((resolve) => setTimeout(resolve, PAST));
  assert.deepEqual(fired, ["a", "c"]);
});

Deno.test("deadlines: arming again never puts one off, and may bring it sooner", async () => {
  const deadlines = createDeadlines();
  const fired: string[] = [];
  deadlines.arm("a", 10, () => fired.push("a sooner"));
  deadlines.arm("a", 1_000, () => fired.push("a later")); // a cancel's grace past the timeout
  deadlines.arm("b", 1_000, () => fired.push("b later"));
  deadlines.arm("b", 10, () => fired.push("b sooner")); // a cancel's grace before it
  await new Promise((resolve) => setTimeout(resolve, PAST));
  assert.deepEqual(fired.sort(), ["a sooner", "b sooner"]);
  deadlines.clearAll();
});
