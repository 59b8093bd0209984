/**
 * GET /metrics: valid Prometheus exposition text whose counters move as tasks run, against a
 * real Warren; the reader itself refuses what the format does not allow.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import { createMetrics } from "../lib/api/metrics.ts";
import type { TaskEvent } from "../lib/events.ts";
import { mergeEvent, type TaskRecord } from "../lib/store/task.ts";
import { eventOf } from "../lib/worker/task.ts";
import { fakeTask } from "./helpers/task.ts";
import { parseExposition, sampleValue } from "./helpers/prometheus.ts";
import {
  AMQP_URL,
  deleteTopology,
  postTask,
  startWarren,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

Deno.test("exposition reader: refuses what the format does not allow", () => {
  const good = '# HELP a_total A.\n# TYPE a_total counter\na_total{h="x"} 3\n';
  assert.equal(sampleValue(parseExposition(good), "a_total", { h: "x" }), 3);
  assert.throws(() => parseExposition("a_total{h=x} 3"), /not a sample/);
  assert.throws(() => parseExposition("# TYPE b wrong\n"), /bad type/);
  assert.throws(() => parseExposition("c 1\n"), /outside any declared family/);
  assert.throws(() => parseExposition("# TYPE d gauge\nd one\n"), /not a sample/);
});

Deno.test("metrics: each step of a task counts once, in whatever order it is recorded", async () => {
  const metrics = createMetrics({
    handlers: ["echo"],
    inspect: () => Promise.resolve(undefined),
    workers: () => undefined,
    connected: () => true,
  });
  const records = new Map<string, TaskRecord>();
  const apply = (event: TaskEvent) => {
    const merged = mergeEvent(records.get(event.id), event);
    if (!merged) return;
    records.set(event.id, merged.record);
    const changes = [{ type: merged.visible, task: merged.record, steps: merged.steps }];
    metrics.observe(changes);
    metrics.track(changes);
  };
  const base = { id: "t", handler: "echo", attempt: 1 };
  // The worker's events are recorded before the api's own "queued" (a group commit may do it).
  apply({ ...base, type: "running", at: 20, createdAt: 10 });
  const running = parseExposition((await metrics.render()).body);
  assert.equal(sampleValue(running, "warren_tasks_in_flight", { handler: "echo" }), 1);
  apply({ ...base, type: "succeeded", at: 30, startedAt: 20 });
  apply({ ...base, type: "queued", attempt: 0, at: 10, payload: {} });
  apply({ ...base, type: "succeeded", at: 30, startedAt: 20 }); // a redelivered event message
  // A task whose transient "running" was lost: its outcome brings the start.
  apply({ ...base, id: "u", type: "queued", attempt: 0, at: 40 });
  apply({ ...base, id: "u", type: "succeeded", at: 60, startedAt: 50 });
  const families = parseExposition((await metrics.render()).body);
  const value = (name: string) => sampleValue(families, name, { handler: "echo" });
  assert.equal(value("warren_tasks_enqueued_total"), 2);
  assert.equal(value("warren_tasks_started_total"), 2);
  assert.equal(value("warren_tasks_succeeded_total"), 2);
  assert.equal(value("warren_tasks_in_flight"), 0);
  assert.equal(
    sampleValue(families, "warren_task_duration_seconds_count", {
      handler: "echo",
      outcome: "succeeded",
    }),
    2,
  );
});

Deno.test("metrics: a task an event made counts so when its worker's events come first", async () => {
  const metrics = createMetrics({
    handlers: ["echo"],
    inspect: () => Promise.resolve(undefined),
    workers: () => undefined,
    connected: () => true,
  });
  let record: TaskRecord | undefined;
  const apply = (event: TaskEvent) => {
    const merged = mergeEvent(record, event);
    if (!merged) return;
    record = merged.record;
    metrics.observe([{ type: merged.visible, task: merged.record, steps: merged.steps }]);
  };
  // POST /events recorded the task (fromWarren), but its worker's "running" reached the store
  // before the api's "queued" did.
  const origin = { id: "e-1", topic: "order.created" };
  const task = fakeTask({ handler: "echo", event: origin, fromWarren: true, createdAt: 10 });
  apply(eventOf(task, "running"));
  apply({ type: "queued", id: task.id, handler: "echo", attempt: 0, at: 10, event: origin });
  const families = parseExposition((await metrics.render()).body);
  assert.equal(sampleValue(families, "warren_event_tasks_total", { handler: "echo" }), 1);
  assert.equal(sampleValue(families, "warren_tasks_enqueued_total", { handler: "echo" }), 1);
});

Deno.test("metrics: valid exposition text; counters move as tasks run", async () => {
  const warren = await startWarren();
  const scrape = async () => {
    const response = await fetch(`${warren.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return parseExposition(await response.text());
  };
  try {
    const before = await scrape();
    for (
      const [name, type] of [
        ["warren_tasks_enqueued_total", "counter"],
        ["warren_tasks_started_total", "counter"],
        ["warren_tasks_succeeded_total", "counter"],
        ["warren_tasks_failed_total", "counter"],
        ["warren_tasks_retried_total", "counter"],
        ["warren_tasks_dead_total", "counter"],
        ["warren_task_duration_seconds", "histogram"],
        ["warren_tasks_in_flight", "gauge"],
        ["warren_queue_messages", "gauge"],
        ["warren_queue_consumers", "gauge"],
        ["warren_dead_letters", "gauge"],
        ["warren_worker_restarts_total", "counter"],
        ["warren_workers_consuming", "gauge"],
        ["warren_broker_connected", "gauge"],
        ["warren_http_requests_total", "counter"],
        ["warren_http_request_duration_seconds", "histogram"],
      ]
    ) {
      assert.equal(before.get(name)?.type, type, name);
      assert.ok(before.get(name)?.help, `${name} has help`);
    }
    assert.equal(sampleValue(before, "warren_broker_connected"), 1);
    assert.equal(sampleValue(before, "warren_queue_consumers", { handler: "cpu" }), 2);
    assert.equal(
      sampleValue(before, "warren_tasks_enqueued_total", { handler: "echo" }),
      undefined,
    );

    const ok = [];
    for (let i = 0; i < 3; i++) ok.push((await postTask(warren.url, "echo", { i }))[1].id);
    const [, failing] = await postTask(warren.url, "fail", {});
    const [, retried] = await postTask(warren.url, "flaky", { succeedOn: 2 });
    // A task another AMQP client published counts as enqueued too.
    const connection = await connect(AMQP_URL);
    const ch = await connection.createConfirmChannel();
    const foreign = `raw-${crypto.randomUUID()}`;
    ch.sendToQueue(`${warren.prefix}.task.echo`, Buffer.from("{}"), { messageId: foreign });
    await ch.waitForConfirms();
    await connection.close();
    ok.push(foreign);
    for (const id of ok) await waitForState(warren.url, id, "succeeded");
    await waitForState(warren.url, failing.id, "dead");
    await waitForState(warren.url, retried.id, "succeeded", 10_000);

    const after = await waitFor(
      async () => {
        const families = await scrape();
        return sampleValue(families, "warren_tasks_succeeded_total", { handler: "flaky" }) === 1
          ? families
          : undefined;
      },
      5_000,
      "the flaky task counted",
    );
    const value = (name: string, handler: string) => sampleValue(after, name, { handler });
    assert.equal(value("warren_tasks_enqueued_total", "echo"), 4);
    assert.equal(value("warren_tasks_started_total", "echo"), 4);
    assert.equal(value("warren_tasks_succeeded_total", "echo"), 4);
    assert.equal(value("warren_tasks_failed_total", "fail"), 1);
    assert.equal(value("warren_tasks_dead_total", "fail"), 1);
    assert.equal(value("warren_tasks_started_total", "flaky"), 2);
    assert.equal(value("warren_tasks_retried_total", "flaky"), 1);
    assert.equal(value("warren_tasks_failed_total", "flaky"), 1);
    assert.equal(value("warren_dead_letters", "fail"), 1);
    assert.equal(value("warren_tasks_in_flight", "echo"), 0);
    assert.equal(
      sampleValue(after, "warren_task_duration_seconds_count", {
        handler: "echo",
        outcome: "succeeded",
      }),
      4,
    );
    const inf = sampleValue(after, "warren_task_duration_seconds_bucket", {
      handler: "echo",
      outcome: "succeeded",
      le: "+Inf",
    });
    assert.equal(inf, 4, "the +Inf bucket holds every observation");
    assert.ok(
      (sampleValue(after, "warren_http_requests_total", {
        method: "POST",
        route: "/tasks/:handler",
        status: "202",
      }) ?? 0) >= 5,
    );
    assert.ok(
      (sampleValue(after, "warren_http_requests_total", { route: "/metrics", status: "200" }) ??
        0) >= 1,
    );
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix);
  }
});
