/**
 * Retries with backoff through the delay cascade, PermanentError, and delayed tasks, against a
 * real broker; the cascade's routing and the backoff math as units.
 */

import assert from "node:assert/strict";
import { DELAY_LEVELS, delayRoute, topology } from "../lib/amqp/topology.ts";
import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import { AMQP_URL, deleteTopology, postTask, startWarren, waitForState } from "./helpers/warren.ts";

Deno.test("delay cascade: a delay is spelled in binary from its highest level", () => {
  const names = topology("w");
  const five = delayRoute(names, 5, "hello");
  assert.equal(five.exchange, "w.delay.2");
  assert.equal(five.routingKey, `${"0.".repeat(DELAY_LEVELS - 3)}1.0.1.hello`);
  assert.equal(delayRoute(names, 1, "x").exchange, "w.delay.0");
  assert.equal(delayRoute(names, 30 * 86_400, "x").exchange, "w.delay.21");
  assert.throws(() => delayRoute(names, 0, "x"), RangeError);
  assert.throws(() => delayRoute(names, 2 ** DELAY_LEVELS, "x"), RangeError);
  assert.throws(() => delayRoute(names, 1.5, "x"), RangeError);
});

Deno.test("retries: failed attempts run again with backoff until they succeed or die", async (t) => {
  const warren = await startWarren();
  try {
    await t.step("a task that fails twice succeeds on its third attempt", async () => {
      const [status, body] = await postTask(warren.url, "flaky", { succeedOn: 3 });
      assert.equal(status, 202);
      const task = await waitForState(warren.url, body.id, "succeeded", 20_000);
      assert.equal(task.attempts, 3);
      assert.deepEqual(task.result, { attempt: 3 }, "ctx.attempt counts attempts");
      assert.equal(task.error, null);
      const steps = task.history.map((h: { state: string; attempt: number }) =>
        `${h.state}:${h.attempt}`
      );
      assert.deepEqual(steps, [
        "queued:0",
        "running:1",
        "retrying:1",
        "running:2",
        "retrying:2",
        "running:3",
        "succeeded:3",
      ]);
      const at = (state: string, attempt: number) =>
        Date.parse(
          task.history.find((h: { state: string; attempt: number }) =>
            h.state === state && h.attempt === attempt
          ).at,
        );
      for (const attempt of [1, 2]) {
        const waited = at("running", attempt + 1) - at("retrying", attempt);
        assert.ok(waited >= 950 && waited < 4000, `waited ${waited} ms for the backoff of 1 s`);
      }
      assert.equal(task.history[2].error, "attempt 1 failed");
    });

    await t.step("retries exhausted: dead after 1 + retries attempts, with the error", async () => {
      const [, body] = await postTask(warren.url, "flaky", {});
      const task = await waitForState(warren.url, body.id, "dead", 20_000);
      assert.equal(task.attempts, 3);
      assert.equal(task.error.message, "attempt 3 failed");
      assert.match(task.error.stack, /flaky\.ts/);
    });

    await t.step("PermanentError: dead at once, no retry", async () => {
      const [, body] = await postTask(warren.url, "flaky", { permanent: true });
      const task = await waitForState(warren.url, body.id, "dead");
      assert.equal(task.attempts, 1);
      assert.equal(task.error.name, "PermanentError");
      assert.equal(task.error.message, "this task can never work");
    });

    await t.step("?delay=2s runs no earlier than 2 s later, about on time", async () => {
      const [status, body] = await postTask(warren.url, "echo?delay=2s", { later: true });
      assert.equal(status, 202);
      const runAt = Date.parse(body.run_at);
      assert.equal(runAt - Date.parse(body.created_at), 2000);
      const queued = await waitForState(warren.url, body.id, "queued");
      assert.equal(queued.run_at, body.run_at);
      const task = await waitForState(warren.url, body.id, "succeeded", 10_000);
      const waited = Date.parse(task.started_at) - Date.parse(task.created_at);
      assert.ok(waited >= 2000 && waited < 3500, `started ${waited} ms after enqueue`);
      assert.deepEqual(task.result, { echo: { later: true } });
    });

    await t.step("?delay=3 counts seconds; several delays come out in order", async () => {
      const posted = await Promise.all(
        ["3", "1", "2"].map((delay) => postTask(warren.url, `echo?delay=${delay}`, { delay })),
      );
      const tasks = await Promise.all(
        posted.map(([, body]) => waitForState(warren.url, body.id, "succeeded", 10_000)),
      );
      for (const task of tasks) {
        const waited = Date.parse(task.started_at) - Date.parse(task.created_at);
        const delay = Number(task.payload.delay) * 1000;
        assert.ok(waited >= delay && waited < delay + 1500, `delay ${delay}: ${waited} ms`);
      }
    });

    await t.step("?delay=5 passes cascade levels 2 and 0; ?delay=1.5 is rounded up", async () => {
      const [[, five], [, half]] = await Promise.all([
        postTask(warren.url, "echo?delay=5", { five: true }),
        postTask(warren.url, "echo?delay=1.5", { half: true }),
      ]);
      assert.equal(Date.parse(half.run_at) - Date.parse(half.created_at), 2000, "up, never down");
      const [fiveDone, halfDone] = await Promise.all([
        waitForState(warren.url, five.id, "succeeded", 10_000),
        waitForState(warren.url, half.id, "succeeded", 10_000),
      ]);
      const waited = (task: { started_at: string; created_at: string }) =>
        Date.parse(task.started_at) - Date.parse(task.created_at);
      assert.ok(waited(fiveDone) >= 5000 && waited(fiveDone) < 6500, `5 s: ${waited(fiveDone)}`);
      assert.ok(waited(halfDone) >= 2000 && waited(halfDone) < 3500, `1.5 s: ${waited(halfDone)}`);
    });

    await t.step(
      "a bad delay is a 400 that says what is allowed, and enqueues nothing",
      async () => {
        for (const delay of ["-1", "soon", "31d", "1y"]) {
          const [status, problem] = await postTask(warren.url, `echo?delay=${delay}`, {});
          assert.equal(status, 400, delay);
          assert.match(problem.detail, /delay must be seconds .* at most 30 days/);
        }
      },
    );
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix);
  }
});

Deno.test("retries: a retry published twice (a confirm timed out) runs once", async () => {
  const warren = await startWarren();
  const connection = await connect(AMQP_URL);
  const log = await Deno.makeTempFile({ suffix: ".runs" });
  try {
    const ch = await connection.createConfirmChannel();
    const id = `twice-${crypto.randomUUID()}`;
    const body = Buffer.from(JSON.stringify({ ms: 300, log }));
    const copy = {
      messageId: id,
      persistent: true,
      headers: { "x-warren-attempt": 2, "x-warren-created-at": Date.now() },
    };
    ch.sendToQueue(`${warren.prefix}.task.counted`, body, copy);
    ch.sendToQueue(`${warren.prefix}.task.counted`, body, copy);
    await ch.waitForConfirms();
    await ch.close();
    const task = await waitForState(warren.url, id, "succeeded");
    assert.equal(task.attempts, 2);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.deepEqual((await Deno.readTextFile(log)).trim().split("\n"), [`${id} 2`], "ran once");
  } finally {
    await connection.close();
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
    await Deno.remove(log);
  }
});
