/**
 * The ledger of runs: what a copy of an attempt learns about the delivery before it; and the
 * worker's side of it, which says what happens to each attempt.
 */

import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/events.ts";
import { createLedger, runKey } from "../lib/worker/ledger.ts";
import { createLedgerClient } from "../lib/worker/ledger_client.ts";
import type { FromWorker } from "../lib/worker/protocol.ts";

const later = () => new Promise((resolve) => setTimeout(resolve, 10));

Deno.test("ledger: a copy of a running attempt waits for it to settle", async () => {
  const ledger = createLedger();
  const key = runKey("t", 0, 1);
  ledger.begin(key, 1);
  let answered = false;
  const verdict = ledger.claim(key, 2).then((v) => (answered = true, v));
  await later();
  assert.equal(answered, false, "waits while the first delivery runs");
  ledger.settle(key);
  assert.deepEqual(await verdict, { kind: "settled" });
  assert.deepEqual(await ledger.claim(key, 3), { kind: "settled" }, "remembered after");
  assert.deepEqual(await ledger.claim(runKey("t", 0, 2), 3), { kind: "free" }, "the next attempt");
  assert.deepEqual(await ledger.claim(runKey("t", 1, 1), 3), { kind: "free" }, "a replay");
});

Deno.test("ledger: a claim holds the attempt, so a second copy waits for the first", async () => {
  const ledger = createLedger();
  const key = runKey("retry", 0, 2);
  assert.deepEqual(await ledger.claim(key, 1), { kind: "free" }, "the first copy runs");
  let answered = false;
  const second = ledger.claim(key, 2).then((v) => (answered = true, v));
  await later();
  assert.equal(answered, false);
  assert.deepEqual(ledger.running(1), [key]);
  ledger.settle(key);
  assert.deepEqual(await second, { kind: "settled" }, "the second copy is only acked");
});

Deno.test("ledger: a worker's death crashes the attempts it names, frees the rest", async () => {
  const ledger = createLedger();
  const [a, b, c] = ["a", "b", "c"].map((id) => runKey(id, 0, 1));
  ledger.begin(a, 1);
  ledger.begin(b, 1);
  ledger.begin(c, 2);
  const waiting = ledger.claim(a, 3);
  assert.deepEqual(ledger.running(1).sort(), [a, b]);
  ledger.died(1, (key) => key === a ? "timed out" : undefined);
  assert.deepEqual(await waiting, { kind: "crashed", reason: "timed out" });
  assert.deepEqual(ledger.running(3), [a], "the waiting copy holds it now");
  assert.deepEqual(await ledger.claim(b, 4), { kind: "free" }, "an innocent bystander runs again");
  assert.deepEqual(ledger.running(1), []);
  assert.deepEqual(ledger.running(2), [c], "other workers are untouched");
  ledger.settle(a);
  assert.deepEqual(await ledger.claim(a, 5), { kind: "settled" }, "settling clears the crash note");
});

Deno.test("ledger: a decided outcome outlives its worker; the copy records it, never reruns", async () => {
  const ledger = createLedger();
  const key = runKey("d", 0, 1);
  const retrying: TaskEvent = { type: "retrying", id: "d", handler: "h", attempt: 1, at: 1 };
  ledger.begin(key, 1);
  ledger.decide(key, retrying);
  const copy = ledger.claim(key, 2);
  ledger.died(1, () => "its worker was terminated");
  assert.deepEqual(await copy, { kind: "decided", event: retrying });
  assert.deepEqual(ledger.running(2), [key]);
  ledger.settle(key);
  assert.deepEqual(await ledger.claim(key, 3), { kind: "settled" });
});

Deno.test("ledger client: begin and returned wait for the turn's end or the next message, in order", async () => {
  const posted: FromWorker[] = [];
  const client = createLedgerClient((message) => posted.push(message));
  client.begin("a/0/1");
  client.begin("b/0/1");
  assert.deepEqual(posted, [], "not yet: the turn goes on");
  client.started("a/0/1", 1_000); // at once: its handler may block the thread
  assert.deepEqual(posted, [{
    type: "batch",
    messages: [
      { type: "begin", key: "a/0/1" },
      { type: "begin", key: "b/0/1" },
      { type: "started", key: "a/0/1", timeoutMs: 1_000 },
    ],
  }]);
  client.returned("a/0/1");
  client.settled("a/0/1"); // at once, before its ack
  assert.deepEqual(posted.slice(1), [{
    type: "batch",
    messages: [{ type: "returned", key: "a/0/1" }, { type: "settled", key: "a/0/1" }],
  }]);
  client.returned("b/0/1");
  await Promise.resolve(); // the turn's end
  assert.deepEqual(posted.slice(2), [{ type: "returned", key: "b/0/1" }], "alone, as itself");
});
