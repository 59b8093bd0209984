/**
 * The ledger of runs: what a redelivered copy of an attempt learns about the delivery before it.
 */

import assert from "node:assert/strict";
import { createLedger, runKey } from "../lib/worker/ledger.ts";

Deno.test("ledger: a copy of a running attempt waits for it to settle", async () => {
  const ledger = createLedger();
  const key = runKey("t", 0, 1);
  ledger.begin(key, 1);
  let answered = false;
  const verdict = ledger.claim(key).then((v) => (answered = true, v));
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(answered, false, "waits while the first delivery runs");
  ledger.settle(key);
  assert.deepEqual(await verdict, { kind: "settled" });
  assert.deepEqual(await ledger.claim(key), { kind: "settled" }, "remembered after");
  assert.deepEqual(await ledger.claim(runKey("t", 0, 2)), { kind: "free" }, "the next attempt");
  assert.deepEqual(await ledger.claim(runKey("t", 1, 1)), { kind: "free" }, "a replay");
});

Deno.test("ledger: a worker's death crashes the attempts it names, frees the rest", async () => {
  const ledger = createLedger();
  const [a, b, c] = ["a", "b", "c"].map((id) => runKey(id, 0, 1));
  ledger.begin(a, 1);
  ledger.begin(b, 1);
  ledger.begin(c, 2);
  const waiting = ledger.claim(a);
  assert.deepEqual(ledger.running(1).sort(), [a, b]);
  ledger.died(1, (key) => key === a ? "timed out" : undefined);
  assert.deepEqual(await waiting, { kind: "crashed", reason: "timed out" });
  assert.deepEqual(await ledger.claim(a), { kind: "crashed", reason: "timed out" });
  assert.deepEqual(await ledger.claim(b), { kind: "free" }, "an innocent bystander runs again");
  assert.deepEqual(ledger.running(1), []);
  assert.deepEqual(ledger.running(2), [c], "other workers are untouched");
  ledger.settle(a);
  assert.deepEqual(await ledger.claim(a), { kind: "settled" }, "settling clears the crash note");
});
