/**
 * Handlers that kill their worker, or overrun their timeout: each counts as a failed attempt
 * with its reason, is retried a bounded number of times and then lands in dead; the worker is
 * replaced with backoff, and other handlers go on undisturbed.
 */

import assert from "node:assert/strict";
import {
  AMQP_URL,
  deleteTopology,
  getJson,
  postTask,
  startWarren,
  uniquePrefix,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

/** The broker URL with a short heartbeat: a terminated worker's socket lingers in Deno until
 * the broker misses its heartbeats, and only then is its delivery given to the next worker. */
function shortHeartbeat(seconds: number): string {
  const url = new URL(AMQP_URL);
  url.searchParams.set("heartbeat", String(seconds));
  return url.toString();
}

Deno.test("crashes and timeouts: bounded retries, then dead with the reason", async (t) => {
  const warren = await startWarren({ env: { AMQP_URL: shortHeartbeat(2) } });
  try {
    await t.step("an uncaught error in a callback", async () => {
      const [, body] = await postTask(warren.url, "crash", { how: "callback" });
      const task = await waitForState(warren.url, body.id, "dead", 30_000);
      assert.equal(task.attempts, 2, "1 + retries (1)");
      assert.equal(task.error.name, "WorkerCrash");
      assert.match(task.error.message, /its worker died while running it: .*boom in a callback/);
      assert.deepEqual(
        task.history.map((h: { state: string; attempt: number }) => `${h.state}:${h.attempt}`),
        ["queued:0", "running:1", "retrying:1", "running:2", "dead:2"],
      );
    });

    await t.step("Deno.exit in the handler", async () => {
      const [, body] = await postTask(warren.url, "crash", { how: "exit" });
      const task = await waitForState(warren.url, body.id, "dead", 30_000);
      assert.equal(task.attempts, 2);
      assert.match(task.error.message, /the handler called Deno.exit\(7\)/);
    });

    await t.step("an endless synchronous loop is terminated; echo runs meanwhile", async () => {
      const [, body] = await postTask(warren.url, "crash", { how: "loop" });
      await waitForState(warren.url, body.id, "running");
      const [, echo] = await postTask(warren.url, "echo", { meanwhile: true });
      const other = await waitForState(warren.url, echo.id, "succeeded", 2_000);
      assert.deepEqual(other.result, { echo: { meanwhile: true } });
      const task = await waitForState(warren.url, body.id, "dead", 30_000);
      assert.equal(task.attempts, 2);
      assert.match(task.error.message, /timed out after 1000 ms .* its worker was terminated/);
      const ran = Date.parse(task.history[2].at) - Date.parse(task.history[1].at);
      assert.ok(ran >= 1000 && ran < 6000, `attempt 1 ended after ${ran} ms`);
    });

    await t.step("a task beside one that overran is run again, not counted as failed", async () => {
      // Both on the one worker (prefetch 2). The hanging task's worker is terminated 3 + 2 s
      // after it started, while the sleeper (started at 3.7 s, for 2.5 s) is still running.
      const [, hang] = await postTask(warren.url, "overrun", { how: "hang" });
      await waitForState(warren.url, hang.id, "running");
      await new Promise((resolve) => setTimeout(resolve, 3_700));
      const [, sleeper] = await postTask(warren.url, "overrun", { how: "sleep", ms: 2_500 });
      await waitForState(warren.url, hang.id, "retrying", 15_000);
      const task = await waitForState(warren.url, sleeper.id, "succeeded", 30_000);
      assert.equal(task.attempts, 1, "its attempt did not count as failed");
      assert.equal(task.error, null);
      assert.deepEqual(
        task.history.map((h: { state: string; attempt: number }) => `${h.state}:${h.attempt}`),
        ["queued:0", "running:1", "succeeded:1"],
      );
    });

    await t.step("a handler that ignores ctx.signal fails at its timeout", async () => {
      const [, body] = await postTask(warren.url, "crash", { how: "hang" });
      const task = await waitForState(warren.url, body.id, "dead", 30_000);
      assert.equal(task.attempts, 2);
      assert.match(task.error.message, /timed out after 1000 ms/);
      const first = Date.parse(task.history[2].at) - Date.parse(task.history[1].at);
      assert.ok(first >= 950 && first < 2000, `the attempt failed ${first} ms after it started`);
    });

    await t.step("the worker came back each time; /handlers and /readyz tell", async () => {
      await waitFor(
        async () => {
          const [, body] = await postTask(warren.url, "crash", { how: "ok" });
          const task = await waitForState(warren.url, body.id, "succeeded", 20_000);
          return task.result.ok;
        },
        30_000,
        "a crash task that succeeds",
      );
      const [, body] = await getJson(`${warren.url}/handlers`);
      const crash = body.handlers.find((h: { name: string }) => h.name === "crash");
      assert.ok(crash.workers.restarts >= 6, `restarts: ${crash.workers.restarts}`);
      assert.equal(crash.workers.crash_looping, true, "6 deaths within a minute");
      assert.ok(crash.workers.last_error);
      const [status, problem] = await getJson(`${warren.url}/readyz`);
      assert.equal(status, 503);
      assert.match(problem.detail, /handler crash: its workers keep dying/);
    });
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix);
  }
});

Deno.test("runaway memory: the process dies each time; after 10 deliveries the task is dead", async () => {
  // A V8 heap overflow in a Web Worker aborts the whole Deno process, so no supervisor lives to
  // tell; the broker's delivery count bounds it instead.
  const prefix = uniquePrefix("oom");
  const storePath = `${await Deno.makeTempDir()}/warren.db`;
  const options = { prefix, storePath, denoFlags: ["--v8-flags=--max-old-space-size=128"] };
  let warren = await startWarren(options);
  try {
    const [, body] = await postTask(warren.url, "crash", { how: "oom" });
    let deaths = 0;
    const isDead = async () => {
      while (true) {
        try {
          const [, task] = await getJson(`${warren.url}/tasks/${body.id}`);
          if (task.state === "dead") return task;
        } catch {
          // the process is going down
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    let task;
    while (!task && deaths < 15) {
      const outcome = await Promise.race([warren.exited, isDead()]);
      if (typeof outcome === "number") {
        assert.notEqual(outcome, 0);
        deaths++;
        warren = await startWarren({ ...options, ready: false });
      } else {
        task = outcome;
      }
    }
    assert.ok(task, "dead in the end");
    assert.equal(task.error.name, "PoisonMessage");
    assert.match(task.error.message, /delivered 11 times without an outcome/);
    assert.equal(deaths, 10, "the process died once per delivery, ten times");
  } finally {
    await warren.stop();
    await deleteTopology(prefix);
  }
});
