/**
 * A handler's context: `ctx.progress` reports, `ctx.enqueue` checks a payload as POST does.
 */

import assert from "node:assert/strict";
import type { NewTask } from "../lib/amqp/publish.ts";
import type { TaskEvent } from "../lib/events.ts";
import { createContext, createEnqueue, schemasOf } from "../lib/worker/context.ts";
import { fakeTask } from "./helpers/task.ts";

function enqueuer() {
  const published: NewTask[] = [];
  const reported: TaskEvent[] = [];
  const enqueue = createEnqueue({
    schemas: schemasOf([
      { name: "typed", schema: { type: "object", required: ["n"] } },
      { name: "free", schema: undefined },
    ]),
    publish: (task) => (published.push(task), Promise.resolve()),
    report: (event) => reported.push(event),
  });
  return { enqueue, published, reported };
}

Deno.test("ctx.enqueue: publishes, reports it queued, resolves with its id", async () => {
  const { enqueue, published, reported } = enqueuer();
  const id = await enqueue("typed", { n: 1 });
  assert.equal(published.length, 1);
  assert.equal(published[0].id, id);
  assert.deepEqual(published[0].payload, { n: 1 });
  assert.equal(reported[0].type, "queued");
  assert.equal(reported[0].id, id);
  assert.deepEqual(await enqueue("free").then(() => published[1].payload), {}, "default {}");
});

Deno.test("ctx.enqueue: refuses what POST refuses, and publishes nothing", async () => {
  const { enqueue, published } = enqueuer();
  await assert.rejects(enqueue("nope", {}), /ctx.enqueue: unknown handler "nope"/);
  await assert.rejects(
    enqueue("typed", {}),
    /the payload does not match the schema of "typed": payload must have required property 'n'/,
  );
  const deep = JSON.parse("[".repeat(200) + "]".repeat(200));
  await assert.rejects(enqueue("free", deep), /deeper than 128 levels/);
  assert.equal(published.length, 0);
});

Deno.test("ctx: the task's facts; progress is reported as an event of this attempt", () => {
  const reported: TaskEvent[] = [];
  const task = fakeTask({ attempt: 2, replay: 1 });
  const signal = new AbortController().signal;
  const ctx = createContext(task, signal, {
    report: (event) => reported.push(event),
    enqueue: () => Promise.resolve("x"),
  });
  assert.equal(ctx.id, "t-1");
  assert.equal(ctx.attempt, 2);
  assert.equal(ctx.signal, signal);
  ctx.progress({ step: 1 });
  assert.equal(reported[0].type, "progress");
  assert.deepEqual(reported[0].progress, { step: 1 });
  assert.equal(reported[0].attempt, 2);
  assert.equal(reported[0].replay, 1);
  assert.equal(reported[0].startedAt, undefined, "only an outcome carries its start");
});
