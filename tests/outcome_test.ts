/**
 * The outcome of an attempt, with a fake port: what is published, in which order, and that the
 * ack always comes last.
 */

import assert from "node:assert/strict";
import type { TaskError, TaskEvent } from "../lib/events.ts";
import { afterFailure, createOutcomes, type OutcomePort } from "../lib/worker/outcome.ts";
import type { Task } from "../lib/worker/task.ts";
import { fakeTask } from "./helpers/task.ts";

const policy = { retries: 2, backoff: { minMs: 1500, maxMs: 1500 } };

/** A port that writes down every call, in order; `sendable: false` fails every retry for good. */
function fakePort(sendable = true) {
  const calls: string[] = [];
  const port: OutcomePort = {
    retry(task: Task, delaySeconds: number) {
      calls.push(`retry ${task.attempt + 1} in ${delaySeconds} s`);
      return Promise.resolve(sendable);
    },
    deadLetter(_task: Task, error: TaskError) {
      calls.push(`dead letter: ${error.message}`);
      return Promise.resolve();
    },
    record(_task: Task, event: TaskEvent) {
      calls.push(`record ${event.type}`);
      return Promise.resolve();
    },
    ledger: {
      decided: (key, event) => calls.push(`decided ${key} ${event.type}`),
      settled: (key) => calls.push(`settled ${key}`),
    },
    cleanStack: (stack) => stack.replace("/srv/", ""),
  };
  return { port, calls };
}

Deno.test("after a failure: retry while attempts are left, dead when not or when permanent", () => {
  assert.deepEqual(afterFailure(1, false, policy), { retry: true, delaySeconds: 2 }, "rounded up");
  assert.deepEqual(afterFailure(2, false, policy), { retry: true, delaySeconds: 2 });
  assert.deepEqual(afterFailure(3, false, policy), { retry: false }, "1 + retries attempts");
  assert.deepEqual(afterFailure(1, true, policy), { retry: false });
  const now = { retries: 1, backoff: { minMs: 0, maxMs: 0 } };
  assert.deepEqual(afterFailure(1, false, now), { retry: true, delaySeconds: 0 });
});

Deno.test("outcome: a success is recorded, then settled, then acked", async () => {
  const { port, calls } = fakePort();
  const task = fakeTask({ startedAt: 900 });
  await createOutcomes(port, policy).succeeded(task, { ok: true });
  assert.deepEqual(calls, ["record succeeded", "settled t-1/0/1"]);
  assert.equal(task.acks, 1);
});

Deno.test("outcome: a failure with retries left is retried, decided, recorded, then acked", async () => {
  const { port, calls } = fakePort();
  const task = fakeTask();
  const acked: number[] = [];
  const outcomes = createOutcomes({
    ...port,
    record: (t, event) => (acked.push(task.acks), port.record(t, event)),
  }, policy);
  await outcomes.failed(task, { message: "boom", stack: "at /srv/x.ts" }, false);
  assert.deepEqual(calls, [
    "retry 2 in 2 s",
    "decided t-1/0/1 retrying",
    "record retrying",
    "settled t-1/0/1",
  ]);
  assert.deepEqual(acked, [0], "not acked before the event is recorded");
  assert.equal(task.acks, 1);
});

Deno.test("outcome: no retry left, a permanent error, or a retry that can never be sent: dead", async () => {
  const cases = [
    { task: fakeTask({ attempt: 3, key: "t-1/0/3" }), permanent: false, sendable: true, tried: [] },
    { task: fakeTask(), permanent: true, sendable: true, tried: [] },
    { task: fakeTask(), permanent: false, sendable: false, tried: ["retry 2 in 2 s"] },
  ];
  for (const { task, permanent, sendable, tried } of cases) {
    const { port, calls } = fakePort(sendable);
    await createOutcomes(port, policy).failed(task, { message: "boom" }, permanent);
    assert.deepEqual(calls, [
      ...tried,
      "dead letter: boom",
      `decided ${task.key} dead`,
      "record dead",
      `settled ${task.key}`,
    ]);
    assert.equal(task.acks, 1);
  }
});

Deno.test("outcome: the recorded event carries the error with its stack cleaned", async () => {
  const events: TaskEvent[] = [];
  const { port } = fakePort();
  const outcomes = createOutcomes({
    ...port,
    record: (_t, event) => (events.push(event), Promise.resolve()),
  }, { retries: 0, backoff: policy.backoff });
  await outcomes.failed(
    fakeTask({ startedAt: 900 }),
    { message: "m", stack: "at /srv/x.ts" },
    false,
  );
  assert.equal(events[0].type, "dead");
  assert.deepEqual(events[0].error, { message: "m", stack: "at x.ts" });
  assert.equal(events[0].startedAt, 900, "an outcome carries its attempt's start");
  assert.equal(events[0].createdAt, 1_000);
});

Deno.test("outcome: a copy of a decided attempt only records it and acks", async () => {
  const { port, calls } = fakePort();
  const task = fakeTask();
  const event: TaskEvent = { type: "retrying", id: "t-1", handler: "h", attempt: 1, at: 5 };
  await createOutcomes(port, policy).recorded(task, event);
  assert.deepEqual(calls, ["record retrying", "settled t-1/0/1"]);
  assert.equal(task.acks, 1);
});
