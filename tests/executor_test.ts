/**
 * A task's life in the executor, step by step, with fake collaborators: no broker, no Web Worker.
 */

import assert from "node:assert/strict";
import type { TaskError, TaskEvent } from "../lib/events.ts";
import type { Context, Handler } from "../lib/handler.ts";
import {
  createExecutor,
  type ExecutorDeps,
  type KeyHolding,
  MAX_DELIVERIES,
} from "../lib/worker/executor.ts";
import type { Verdict } from "../lib/worker/ledger.ts";
import { type Cancels, createCancels } from "../lib/worker/cancels.ts";
import type { Task } from "../lib/worker/task.ts";
import { fakeTask } from "./helpers/task.ts";

/** An executor whose collaborators write down what they were asked, in order. */
function harness(
  handler: Handler,
  verdict: Verdict = { kind: "free" },
  timeoutMs = 1_000,
  holding?: KeyHolding,
  cancels: Cancels = createCancels(),
) {
  const calls: string[] = [];
  let ran = 0;
  const deps: ExecutorDeps = {
    handler: (payload, ctx) => (ran++, handler(payload, ctx)),
    file: "h.ts",
    config: { timeoutMs },
    maxBodyBytes: 1_000,
    validate: (value) =>
      typeof value === "object" && value !== null && "bad" in value
        ? [{ pointer: "/bad", message: "is not allowed" }]
        : [],
    ledger: {
      begin: (key) => (calls.push(`begin ${key}`), { kind: "free" }),
      claim: (key) => (calls.push(`claim ${key}`), Promise.resolve(verdict)),
      started: (key) => calls.push(`started ${key}`),
      cancelling: (key) => calls.push(`cancelling ${key}`),
      returned: (key) => calls.push(`returned ${key}`),
      settled: (key) => calls.push(`settled ${key}`),
    },
    outcomes: {
      succeeded: (_task: Task, result: unknown) => {
        calls.push(`succeeded ${JSON.stringify(result)}`);
        return Promise.resolve();
      },
      failed: (_task: Task, error: TaskError, permanent: boolean) => {
        calls.push(
          `failed ${error.name ?? ""}: ${error.message}${permanent ? " (permanent)" : ""}`,
        );
        return Promise.resolve();
      },
      recorded: (_task: Task, event: TaskEvent) => {
        calls.push(`recorded ${event.type}`);
        return Promise.resolve();
      },
      cancelled: () => (calls.push("cancelled"), Promise.resolve()),
    },
    cancels,
    announce: (event) => (calls.push(`announce ${event.type}`), Promise.resolve()),
    context: (task, signal) => ({ id: task.id, signal }) as unknown as Context,
    holdsKey: holding && ((task) => (calls.push(`key ${task.id}`), Promise.resolve(holding))),
  };
  return { execute: createExecutor(deps), calls, ran: () => ran };
}

const body = (text: string) => new TextEncoder().encode(text);

Deno.test("executor: a fresh task runs its handler and hands the result on", async () => {
  const { execute, calls } = harness((payload) => ({ got: payload }));
  const task = fakeTask({ body: body('{"n":1}') });
  await execute(task);
  assert.deepEqual(calls, [
    "begin t-1/0/1",
    "announce running",
    "started t-1/0/1",
    "returned t-1/0/1",
    'succeeded {"got":{"n":1}}',
  ]);
  assert.ok(task.startedAt !== undefined, "the clock started with the handler");
});

Deno.test("executor: a copy asks the ledger, and the verdict decides", async () => {
  const event: TaskEvent = { type: "dead", id: "t-1", handler: "h", attempt: 2, at: 1 };
  const verdicts: [Verdict, string][] = [
    [{ kind: "settled" }, "acked"],
    [{ kind: "decided", event }, "recorded dead"],
    [{ kind: "crashed", reason: "its worker died" }, "failed WorkerCrash: its worker died"],
  ];
  for (const [verdict, expected] of verdicts) {
    const { execute, calls, ran } = harness(() => "never", verdict);
    const task = fakeTask({ attempt: 2, key: "t-1/0/2" });
    await execute(task);
    assert.equal(calls[0], "claim t-1/0/2", "a retry may repeat an attempt: it claims");
    assert.equal(task.acks === 1 ? "acked" : calls[1], expected);
    assert.equal(ran(), 0, `${verdict.kind}: the handler never runs`);
  }
});

Deno.test("executor: a message redelivered too often with no outcome is dead", async () => {
  const { execute, calls, ran } = harness(() => "never");
  await execute(fakeTask({ redelivered: true, deliveries: MAX_DELIVERIES }));
  assert.match(
    calls[1],
    /^failed PoisonMessage: delivered 11 times without an outcome.*\(permanent\)$/,
  );
  assert.equal(ran(), 0);
});

Deno.test("executor: a payload that breaks a rule is dead before the handler runs", async () => {
  for (
    const [text, reason] of [
      ["{oops", /not valid JSON/],
      ['{"bad":true}', /\/bad is not allowed/],
      ["[".repeat(200) + "]".repeat(200), /deeper than 128 levels/],
      [JSON.stringify({ big: "x".repeat(2_000) }), /over the limit of 1000 bytes/],
    ] as const
  ) {
    const { execute, calls, ran } = harness(() => "never");
    await execute(fakeTask({ body: body(text) }));
    assert.match(calls[1], /^failed InvalidPayload: /);
    assert.match(calls[1], reason);
    assert.match(calls[1], /\(permanent\)$/);
    assert.equal(ran(), 0);
  }
});

Deno.test("executor: a handler that throws, or outlives its time limit, fails its attempt", async () => {
  const thrown = harness(() => {
    throw new TypeError("nope");
  });
  await thrown.execute(fakeTask());
  assert.equal(thrown.calls.at(-1), "failed TypeError: nope");

  const slow = harness(
    (_payload, ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
      ),
    { kind: "free" },
    50,
  );
  await slow.execute(fakeTask());
  assert.equal(slow.calls.at(-1), "failed Error: timed out after 50 ms");
});

Deno.test("executor: a task whose idempotency key another task holds is dropped, not run", async () => {
  const repeat = harness(() => "never", { kind: "free" }, 1_000, "repeat");
  const task = fakeTask({ body: body("{}") });
  let acked = false;
  task.ack = () => void (acked = true);
  await repeat.execute(task);
  assert.deepEqual(repeat.calls, ["begin t-1/0/1", "key t-1", "settled t-1/0/1"]);
  assert.equal(acked, true);
  assert.equal(repeat.ran(), 0);

  const unknown = harness(() => "never", { kind: "free" }, 1_000, {
    error: { name: "IdempotencyKeyUnchecked", message: "no api node answered" },
    permanent: false,
  });
  await unknown.execute(fakeTask({ body: body("{}") }));
  assert.deepEqual(unknown.calls.slice(1), [
    "key t-1",
    "failed IdempotencyKeyUnchecked: no api node answered",
  ]);
  const holds = harness(() => "ran", { kind: "free" }, 1_000, "holds");
  await holds.execute(fakeTask({ body: body("{}") }));
  assert.equal(holds.ran(), 1);
});

Deno.test("executor: a cancelled task ends cancelled and its handler never runs", async () => {
  const cancels = createCancels();
  cancels.add(["t-1"], Date.now());
  const fresh = harness(() => "never", undefined, 1_000, undefined, cancels);
  await fresh.execute(fakeTask());
  assert.deepEqual(fresh.calls, ["begin t-1/0/1", "cancelled"]);
  assert.equal(fresh.ran(), 0);
  // Its worker was ended after the cancel's grace: the copy is cancelled, not a failure.
  const crashed = harness(
    () => "never",
    { kind: "crashed", reason: "cancelled, and did not stop" },
    1_000,
    undefined,
    cancels,
  );
  await crashed.execute(fakeTask({ redelivered: true }));
  assert.deepEqual(crashed.calls, ["claim t-1/0/1", "cancelled"]);
  assert.equal(crashed.ran(), 0);
});

Deno.test("executor: a cancel aborts a running handler's signal; its failure ends cancelled", async () => {
  const cancels = createCancels();
  let reason: unknown;
  const { execute, calls } = harness(
    (_payload, ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => {
          reason = ctx.signal.reason;
          reject(ctx.signal.reason);
        })
      ),
    undefined,
    10_000,
    undefined,
    cancels,
  );
  const done = execute(fakeTask());
  await new Promise((resolve) => setTimeout(resolve, 10));
  cancels.add(["t-1"], Date.now());
  await done;
  assert.ok(reason instanceof Error && reason.message === "cancelled");
  assert.equal(reason.name, "CancelledError");
  assert.deepEqual(calls.slice(-3), ["cancelling t-1/0/1", "returned t-1/0/1", "cancelled"]);
});

Deno.test("executor: a cancel ends the attempt cancelled even if its handler ignores it", async () => {
  const cancels = createCancels();
  const { execute, calls } = harness(
    () => new Promise((resolve) => setTimeout(() => resolve("late"), 50)),
    undefined,
    1_000,
    undefined,
    cancels,
  );
  const done = execute(fakeTask());
  await new Promise((resolve) => setTimeout(resolve, 10));
  cancels.add(["t-1"], Date.now());
  await done;
  assert.deepEqual(calls.slice(-2), ["cancelling t-1/0/1", "cancelled"]);
  await new Promise((resolve) => setTimeout(resolve, 60)); // its call ends later, unheard
});

Deno.test("cancels: kept for their time, at most a bound of them, oldest first", () => {
  let now = 1_000_000;
  const forgotten: string[] = [];
  const cancels = createCancels({
    keptMs: 1_000,
    max: 2,
    now: () => now,
    onOverflow: (id) => forgotten.push(id),
  });
  cancels.add(["a", "b"], now);
  cancels.add(["c"], now);
  assert.deepEqual(forgotten, ["a"], "past the bound, the oldest goes (and says so)");
  assert.ok(!cancels.has("a") && cancels.has("b") && cancels.has("c"));
  now += 2_000;
  cancels.add(["d"], now);
  assert.deepEqual(forgotten, ["a"], "expired ones go quietly");
  assert.ok(!cancels.has("b") && !cancels.has("c") && cancels.has("d"));
});
