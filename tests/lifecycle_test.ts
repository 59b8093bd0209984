/**
 * A Warren process's life: a graceful stop lets in-flight handlers finish, records and acks their
 * outcomes, keeps answering HTTP until the very end, and exits 0; a restart keeps the task
 * history, and no task runs twice across it.
 */

import assert from "node:assert/strict";
import {
  deleteTopology,
  getJson,
  postTask,
  startWarren,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

/** The executions a run log holds, per "<id> <attempt>". */
async function executions(log: string): Promise<Map<string, number>> {
  const runs = new Map<string, number>();
  const text = await Deno.readTextFile(log).catch(() => "");
  for (const line of text.split("\n").filter(Boolean)) runs.set(line, (runs.get(line) ?? 0) + 1);
  return runs;
}

Deno.test("lifecycle: SIGTERM finishes in-flight tasks; a restart keeps history", async () => {
  let warren = await startWarren();
  const { prefix, storePath } = warren;
  const log = await Deno.makeTempFile({ suffix: ".runs" });
  try {
    const [, quick] = await postTask(warren.url, "echo", { before: "restart" });
    await waitForState(warren.url, quick.id, "succeeded");
    const [, slow] = await postTask(warren.url, "counted", { ms: 1_000, log });
    await waitForState(warren.url, slow.id, "running");

    assert.equal(await warren.stop("SIGTERM"), 0, warren.output());
    assert.match(warren.output(), /stopping: no new tasks/);
    assert.match(warren.output(), /stopped/);

    warren = await startWarren({ prefix, storePath });
    const [, kept] = await getJson(`${warren.url}/tasks/${quick.id}`);
    assert.equal(kept.state, "succeeded");
    assert.deepEqual(kept.result, { echo: { before: "restart" } });
    const finished = await waitForState(warren.url, slow.id, "succeeded");
    assert.deepEqual(finished.result, { ran: slow.id });
    // Give a redelivery time to show itself: it would run now that a worker consumes again.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.deepEqual(
      [...await executions(log)],
      [[`${slow.id} 1`, 1]],
      "it ran once, in the grace",
    );

    const [, list] = await getJson(`${warren.url}/tasks`);
    const ids = list.tasks.map((t: { id: string }) => t.id);
    assert.ok(ids.includes(quick.id) && ids.includes(slow.id));
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(prefix);
    await Deno.remove(log);
  }
});

Deno.test("lifecycle: SIGTERM under load, then a restart: every task ran exactly once", async () => {
  let warren = await startWarren();
  const { prefix, storePath } = warren;
  const log = await Deno.makeTempFile({ suffix: ".runs" });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 300; i += 50) {
      const posts = await Promise.all(
        Array.from({ length: 50 }, () => postTask(warren.url, "counted", { ms: 30, log })),
      );
      for (const [status, body] of posts) {
        assert.equal(status, 202);
        ids.push(body.id);
      }
    }
    // Mid-way: with prefetch 10, ten deliveries are in flight when the stop comes.
    await waitFor(async () => (await executions(log)).size >= 60, 20_000, "60 runs");
    assert.equal(await warren.stop("SIGTERM"), 0, warren.output());
    const before = (await executions(log)).size;
    assert.ok(before < ids.length, `the stop came mid-way (${before} ran)`);

    warren = await startWarren({ prefix, storePath });
    for (const id of ids) {
      const task = await waitForState(warren.url, id, "succeeded", 30_000);
      assert.ok(task.started_at, `${id} has its start`);
      assert.deepEqual(
        task.history.map((step: { state: string }) => step.state),
        ["queued", "running", "succeeded"],
        "every step, across the restart",
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const runs = await executions(log);
    const twice = [...runs].filter(([, n]) => n > 1).map(([key]) => key);
    assert.deepEqual(twice, [], "no task ran twice across the SIGTERM");
    assert.equal(runs.size, ids.length);
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(prefix);
    await Deno.remove(log);
  }
});

Deno.test("lifecycle: through the grace the server answers; the listener closes last", async () => {
  // Straight to the server: the test is about its own listener.
  const warren = await startWarren({ env: { WARREN_SHUTDOWN_GRACE: "10s" }, contract: false });
  const log = await Deno.makeTempFile({ suffix: ".runs" });
  try {
    const [, done] = await postTask(warren.url, "echo", {});
    await waitForState(warren.url, done.id, "succeeded");
    // A task that keeps the grace open for about two seconds.
    const [, slow] = await postTask(warren.url, "counted", { ms: 2_000, log });
    await waitForState(warren.url, slow.id, "running");

    const answers: { at: number; status: number | "refused"; body?: string; retry?: string }[] = [];
    let exitedAt = Infinity;
    warren.exited.then(() => exitedAt = Date.now());
    const client = (async () => {
      while (exitedAt === Infinity) {
        const at = Date.now();
        try {
          const response = await fetch(`${warren.url}/tasks/echo`, { method: "POST", body: "{}" });
          answers.push({
            at,
            status: response.status,
            body: await response.text(),
            retry: response.headers.get("retry-after") ?? undefined,
          });
        } catch {
          answers.push({ at, status: "refused" });
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stopping = warren.stop("SIGTERM");
    await waitFor(
      async () => {
        const [status, body] = await getJson(`${warren.url}/readyz`);
        return status === 503 && /draining/.test(body.detail);
      },
      2_000,
      "/readyz to say draining",
    );
    const [readStatus, read] = await getJson(`${warren.url}/tasks/${done.id}`);
    assert.equal(readStatus, 200, "reads still answer");
    assert.equal(read.state, "succeeded");
    assert.equal(await stopping, 0, warren.output());
    await client;

    const refusals = answers.filter((a) => a.status === 503);
    assert.ok(refusals.length > 0, "POSTs during the grace were answered");
    for (const refusal of refusals) {
      assert.match(refusal.body!, /shutting down/);
      assert.ok(refusal.retry, "with Retry-After");
    }
    assert.deepEqual(answers.filter((a) => a.status === 500), [], "never a 500");
    const early = answers.filter((a) => a.status === "refused" && a.at < exitedAt - 300);
    assert.deepEqual(early, [], "no connection refused while the process still ran");
    assert.equal((await executions(log)).size, 1, "the slow task finished in the grace");
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix);
    await Deno.remove(log);
  }
});

Deno.test("lifecycle: SIGINT stops too", async () => {
  const warren = await startWarren();
  try {
    const [, task] = await postTask(warren.url, "echo", {});
    await waitFor(async () =>
      (await getJson(`${warren.url}/tasks/${task.id}`))[1].state === "succeeded"
    );
  } finally {
    assert.equal(await warren.stop("SIGINT"), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
