/** Coarse timeouts: never early, at most a slot late, and nothing left pending once cleared. */

import assert from "node:assert/strict";
import { coarseTimeout, SLOT_MS } from "../lib/coarse_timer.ts";

Deno.test("coarse timeouts: fire no earlier than asked, at most a slot later", async () => {
  const started = Date.now();
  const fired = await Promise.all(
    [50, 120, 120, 300].map((ms) =>
      new Promise<number>((resolve) => coarseTimeout(() => resolve(Date.now() - started), ms))
    ),
  );
  for (const [i, ms] of [50, 120, 120, 300].entries()) {
    assert.ok(fired[i] >= ms, `${ms} ms fired at ${fired[i]} ms`);
    assert.ok(fired[i] <= ms + SLOT_MS + 200, `${ms} ms fired at ${fired[i]} ms`); // + the scheduler's slack
  }
});

Deno.test("coarse timeouts: a cleared one never fires; clearing all leaves no timer (sanitizer)", async () => {
  let fired = 0;
  const clears = Array.from({ length: 1_000 }, () => coarseTimeout(() => fired++, 150));
  const kept = coarseTimeout(() => fired += 1_000, 150);
  for (const clear of clears) clear();
  clears[0](); // twice is harmless
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(fired, 1_000, "only the one not cleared");
  kept(); // after it fired: harmless
  for (const clear of Array.from({ length: 10 }, () => coarseTimeout(() => fired++, 5_000))) {
    clear();
  }
});
