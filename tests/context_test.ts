/**
 * A handler's context: `ctx.progress` reports, `ctx.enqueue` and `ctx.publish` check a payload as
 * POST does.
 */

import assert from "node:assert/strict";
import type { NewEvent, NewTask } from "../lib/amqp/publish.ts";
import type { KeyRequest } from "../lib/api/key_server.ts";
import type { KeyVerdict } from "../lib/store/keys.ts";
import type { TaskEvent } from "../lib/events.ts";
import { createContext, createEnqueue, createPublish, schemasOf } from "../lib/worker/context.ts";
import { fakeTask } from "./helpers/task.ts";

const SCHEMAS = schemasOf([
  {
    name: "typed",
    schema: { type: "object", required: ["n"] },
    subscribe: ["count.*"],
    idempotencyKey: [],
  },
  { name: "free", schema: undefined, subscribe: ["#"], idempotencyKey: [] },
  { name: "keyed", schema: undefined, subscribe: [], idempotencyKey: ["/order"] },
]);

function enqueuer() {
  const published: NewTask[] = [];
  const reported: TaskEvent[] = [];
  const enqueue = createEnqueue({
    schemas: SCHEMAS,
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
    publish: () => Promise.resolve("e"),
  });
  assert.equal(ctx.id, "t-1");
  assert.equal(ctx.event, undefined, "a task no event made");
  assert.equal(ctx.attempt, 2);
  assert.equal(ctx.signal, signal);
  ctx.progress({ step: 1 });
  assert.equal(reported[0].type, "progress");
  assert.deepEqual(reported[0].progress, { step: 1 });
  assert.equal(reported[0].attempt, 2);
  assert.equal(reported[0].replay, 1);
  assert.equal(reported[0].startedAt, undefined, "only an outcome carries its start");
});

Deno.test("ctx.publish: checks the topic and every known subscriber's schema, then publishes", async () => {
  const published: NewEvent[] = [];
  const publish = createPublish({
    schemas: SCHEMAS,
    publish: (event) => (published.push(event), Promise.resolve()),
  });
  await assert.rejects(publish("order.*", {}), /ctx.publish: a topic is words joined by dots/);
  await assert.rejects(
    publish("count.up", {}),
    /ctx.publish: the payload does not match the schema of "typed"/,
  );
  assert.equal(published.length, 0);
  const id = await publish("order.created", { order: 1 });
  assert.equal(published[0].id, id);
  assert.equal(published[0].topic, "order.created");
  assert.equal(published[0].recorded, false, "its workers record its tasks");
  await publish("count.up", { n: 1 });
  assert.equal(published.length, 2);
});

Deno.test("ctx.enqueue: a target that derives keys is asked about first: one task per key", async () => {
  const published: NewTask[] = [];
  const asked: KeyRequest[] = [];
  const answers: (KeyVerdict | { kind: "done" })[] = [];
  const enqueue = createEnqueue({
    schemas: SCHEMAS,
    publish: (task) => (published.push(task), Promise.resolve()),
    report: () => {},
    keys: (request) => {
      asked.push(request);
      return Promise.resolve(request.op === "claim" ? answers.shift()! : { kind: "done" });
    },
  });
  answers.push({ kind: "claimed" });
  const first = await enqueue("keyed", { order: 7 });
  assert.deepEqual(asked.map((r) => [r.op, r.scope, r.key]), [
    ["claim", "task:keyed", "7"],
    ["complete", "task:keyed", "7"],
  ]);
  assert.equal(published[0].id, first);
  assert.equal(asked[0].taskId, first, "the id it claimed with");

  answers.push({ kind: "replay", taskId: first, answer: "{}" });
  assert.equal(await enqueue("keyed", { order: 7 }), first, "a repeat: the first task");
  assert.equal(published.length, 1, "and nothing published");

  answers.push({ kind: "retry", taskId: "t-orphan" });
  assert.equal(await enqueue("keyed", { order: 8 }), "t-orphan", "published again, as its id");
  assert.equal(published[1].id, "t-orphan");

  answers.push(
    { kind: "busy", taskId: "t-other", retryAfterMs: 1000 },
    { kind: "mismatch", taskId: "t-other" },
  );
  await assert.rejects(enqueue("keyed", { order: 9 }), /is being enqueued now; try again/);
  await assert.rejects(enqueue("keyed", { order: 9 }), /was used for another payload/);
  await enqueue("keyed", {});
  assert.equal(published.length, 3, "a payload without the key is not asked about");
});
