/**
 * The broker going away: /readyz and POST answer 503 with Retry-After (nothing is promised that
 * is not in the broker), and everything resumes by itself when the broker is back.
 */

import assert from "node:assert/strict";
import { connect } from "amqplib";
import { brokerProxy } from "./helpers/proxy.ts";
import {
  AMQP_URL,
  deleteTopology,
  getJson,
  postTask,
  startWarren,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

Deno.test("broker: 503 while the broker is unreachable, recovery when it is back", async () => {
  const proxy = brokerProxy(AMQP_URL);
  const warren = await startWarren({ env: { AMQP_URL: proxy.url } });
  try {
    const [, before] = await postTask(warren.url, "echo", { n: 1 });
    await waitForState(warren.url, before.id, "succeeded");

    proxy.pause();
    // Workers and the api notice the cut each on their own connection, in any order.
    const [readyStatus, notReady] = await waitFor(
      async () => {
        const answer = await getJson(`${warren.url}/readyz`);
        return answer[1].reasons?.includes("not connected to the broker") ? answer : undefined;
      },
      10_000,
      "/readyz to report the lost broker",
    );
    assert.equal(readyStatus, 503);
    assert.equal(notReady.status, 503);

    const [status, problem, headers] = await postTask(warren.url, "echo", { n: 2 });
    assert.equal(status, 503);
    assert.equal(headers.get("retry-after"), "5");
    assert.match(problem.detail, /not connected to the broker; nothing was enqueued/);
    assert.equal((await getJson(`${warren.url}/healthz`))[0], 200, "alive all the same");

    proxy.resume();
    await waitFor(async () => (await getJson(`${warren.url}/readyz`))[0] === 200, 30_000, "ready");
    const [, after] = await postTask(warren.url, "echo", { n: 3 });
    const task = await waitForState(warren.url, after.id, "succeeded");
    assert.deepEqual(task.result, { echo: { n: 3 } });
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await proxy.close();
    await deleteTopology(warren.prefix);
  }
});

Deno.test("broker: a publish the broker does not confirm in time is a 503", async () => {
  const proxy = brokerProxy(AMQP_URL);
  const warren = await startWarren({ env: { AMQP_URL: proxy.url, WARREN_PUBLISH_TIMEOUT: "1s" } });
  try {
    proxy.stall();
    const started = Date.now();
    const [status, problem, headers] = await postTask(warren.url, "echo", { stalled: true });
    assert.equal(status, 503);
    assert.ok(headers.get("retry-after"));
    assert.match(problem.detail, /did not confirm within 1000 ms; the broker may still have it/);
    assert.ok(Date.now() - started >= 1000);
    const [, list] = await getJson(`${warren.url}/tasks?handler=echo`);
    assert.equal(list.tasks.length, 0, "no record of a task that was refused");
    proxy.resume();
    const [after] = await postTask(warren.url, "echo", { n: 1 });
    assert.equal(after, 202);
  } finally {
    proxy.resume();
    assert.equal(await warren.stop(), 0, warren.output());
    await proxy.close();
    await deleteTopology(warren.prefix);
  }
});

Deno.test("broker: past WARREN_MAX_PENDING unconfirmed tasks, POST answers 429", async () => {
  const proxy = brokerProxy(AMQP_URL);
  const warren = await startWarren({
    env: { AMQP_URL: proxy.url, WARREN_PUBLISH_TIMEOUT: "3s", WARREN_MAX_PENDING: "2" },
  });
  try {
    proxy.stall();
    const waiting = [1, 2].map((n) => postTask(warren.url, "echo", { n }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const [status, problem, headers] = await postTask(warren.url, "echo", { n: 3 });
    assert.equal(status, 429);
    assert.equal(headers.get("retry-after"), "1");
    assert.match(problem.detail, /2 tasks await the broker's confirm \(WARREN_MAX_PENDING\)/);
    proxy.resume();
    for (const [code] of await Promise.all(waiting)) assert.ok(code === 202 || code === 503);
    const [after] = await postTask(warren.url, "echo", { n: 4 });
    assert.equal(after, 202, "room again once the broker answers");
  } finally {
    proxy.resume();
    assert.equal(await warren.stop(), 0, warren.output());
    await proxy.close();
    await deleteTopology(warren.prefix);
  }
});

Deno.test("broker: a deleted queue is declared and consumed again", async () => {
  const warren = await startWarren();
  const connection = await connect(AMQP_URL);
  try {
    const ch = await connection.createChannel();
    await ch.deleteQueue(`${warren.prefix}.task.echo`);
    await ch.deleteQueue(`${warren.prefix}.events.record`);
    await ch.close();
    await waitFor(
      async () => {
        const [, body] = await getJson(`${warren.url}/handlers`);
        const echo = body.handlers.find((h: { name: string }) => h.name === "echo");
        return echo.queue.consumers === 1;
      },
      15_000,
      "echo to have its consumer back",
    );
    const [status, task] = await postTask(warren.url, "echo", { again: true });
    assert.equal(status, 202);
    const done = await waitForState(warren.url, task.id, "succeeded");
    assert.deepEqual(done.result, { echo: { again: true } });
  } finally {
    await connection.close();
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});

Deno.test("broker: a refused login is retried and the password never reaches the log", async () => {
  const url = new URL(AMQP_URL);
  url.password = "wrong-secret-pw";
  const warren = await startWarren({ env: { AMQP_URL: url.toString() }, ready: false });
  try {
    const [status, body] = await waitFor(
      async () => {
        const answer = await getJson(`${warren.url}/readyz`);
        return answer[1].reasons ? answer : undefined;
      },
      10_000,
      "a readiness answer",
    );
    assert.equal(status, 503);
    assert.ok(body.reasons.includes("not connected to the broker"));
    await waitFor(() => /cannot reach the broker/.test(warren.output()), 10_000, "a log line");
    assert.ok(!warren.output().includes("wrong-secret-pw"), warren.output());
    const [postStatus, problem] = await postTask(warren.url, "echo", {});
    assert.equal(postStatus, 503);
    assert.ok(!JSON.stringify(problem).includes("wrong-secret-pw"));
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
  }
});

Deno.test("broker: a slow broker does not eat an attempt's time limit", async () => {
  const proxy = brokerProxy(AMQP_URL);
  const warren = await startWarren({ env: { AMQP_URL: proxy.url } });
  try {
    // Every confirm now takes 600 ms, twice the slow handler's 300 ms limit; its run takes 100.
    proxy.latency(600);
    const [status, body] = await postTask(warren.url, "slow", { ms: 100 });
    assert.equal(status, 202);
    const task = await waitForState(warren.url, body.id, "succeeded", 15_000);
    assert.equal(task.result, "finished", "the clock started with the handler");
  } finally {
    proxy.latency(0);
    assert.equal(await warren.stop(), 0, warren.output());
    await proxy.close();
    await deleteTopology(warren.prefix);
  }
});

/** How many messages a queue holds ready, once a requeue has settled (quorum queues lag). */
async function readyCount(queue: string, expected: number): Promise<number> {
  const connection = await connect(AMQP_URL);
  try {
    const ch = await connection.createChannel();
    let count = -1;
    const deadline = Date.now() + 3_000;
    while (count !== expected && Date.now() < deadline) {
      count = (await ch.checkQueue(queue)).messageCount;
      if (count !== expected) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await ch.close();
    return count;
  } finally {
    await connection.close();
  }
}

Deno.test("broker: a delivery is not acked before its outcome is confirmed", async () => {
  const proxy = brokerProxy(AMQP_URL);
  const warren = await startWarren({ env: { AMQP_URL: proxy.url } });
  const log = await Deno.makeTempFile({ suffix: ".runs" });
  try {
    const [, body] = await postTask(warren.url, "counted", { ms: 800, log });
    await waitForState(warren.url, body.id, "running");
    // The handler finishes while nothing comes back from the broker: its "succeeded" goes out,
    // its confirm does not come back, so its delivery must stay unacked.
    proxy.holdDownstream();
    await waitFor(async () => (await Deno.readTextFile(log)).length > 0, 5_000, "the run");
    await new Promise((resolve) => setTimeout(resolve, 300));
    proxy.pause(); // every connection drops: the broker requeues what was not acked
    assert.equal(await readyCount(`${warren.prefix}.task.counted`, 1), 1, "not acked");
    proxy.resume();
    const task = await waitForState(warren.url, body.id, "succeeded", 20_000);
    assert.deepEqual(task.result, { ran: body.id });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await Deno.readTextFile(log)).trim().split("\n").length, 1, "it ran once");
  } finally {
    proxy.resume();
    assert.equal(await warren.stop(), 0, warren.output());
    await proxy.close();
    await deleteTopology(warren.prefix);
    await Deno.remove(log);
  }
});

Deno.test("broker: prefetch 10 and a cut mid-run: nothing acked early, each runs once", async () => {
  const proxy = brokerProxy(AMQP_URL);
  const warren = await startWarren({ env: { AMQP_URL: proxy.url } });
  const log = await Deno.makeTempFile({ suffix: ".runs" });
  try {
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await postTask(warren.url, "counted", { ms: 2_000, log }))[1].id);
    }
    // The last delivery finishes first: its ack must not take the three before it along.
    const [, quick] = await postTask(warren.url, "counted", { ms: 100, log });
    await waitForState(warren.url, quick.id, "succeeded");
    for (const id of ids) await waitForState(warren.url, id, "running");
    proxy.pause();
    assert.equal(await readyCount(`${warren.prefix}.task.counted`, 3), 3, "the three come back");
    proxy.resume();
    for (const id of ids) await waitForState(warren.url, id, "succeeded", 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const runs = (await Deno.readTextFile(log)).trim().split("\n").sort();
    assert.deepEqual(runs, [...ids, quick.id].map((id) => `${id} 1`).sort(), "each ran once");
  } finally {
    proxy.resume();
    assert.equal(await warren.stop(), 0, warren.output());
    await proxy.close();
    await deleteTopology(warren.prefix);
    await Deno.remove(log);
  }
});
