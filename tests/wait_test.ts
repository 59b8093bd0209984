/**
 * Request/reply: `?wait=` holds a POST's (or a GET's) answer until the task ends, within a bound
 * (`WARREN_MAX_WAIT`); past it the answer is what it is without a wait.
 */

import assert from "node:assert/strict";
import { deleteTopology, getJson, type Json, startWarren } from "./helpers/warren.ts";

async function post(url: string, path: string, body: unknown): Promise<[number, Json, Headers]> {
  const response = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
  return [response.status, await response.json(), response.headers];
}

Deno.test("wait: a POST or GET with ?wait= answers once the task ends", async (t) => {
  const warren = await startWarren({ env: { WARREN_MAX_WAIT: "2s" } });
  try {
    await t.step("POST ?wait=: 200 with the result when it succeeds in time", async () => {
      const [status, task, headers] = await post(warren.url, "/tasks/echo?wait=10s", { n: 1 });
      assert.equal(status, 200, JSON.stringify(task));
      assert.equal(task.state, "succeeded");
      assert.deepEqual(task.result, { echo: { n: 1 } });
      assert.equal(headers.get("location"), `/tasks/${task.id}`);
    });

    await t.step("POST ?wait=: 200 with the error when it dies in time", async () => {
      const [status, task] = await post(warren.url, "/tasks/fail?wait=10", { message: "no" });
      assert.equal(status, 200);
      assert.equal(task.state, "dead");
      assert.equal(task.error.message, "no");
    });

    await t.step("the wait is bounded by WARREN_MAX_WAIT: then 202 as without a wait", async () => {
      const started = Date.now();
      // 5 s of work: the POST's 2 s and a GET's 2 s end 1 s before it, a second GET 1 s after.
      const [status, accepted] = await post(warren.url, "/tasks/steps?wait=30s", {
        steps: 5,
        ms: 1000,
      });
      const waited = Date.now() - started;
      assert.equal(status, 202);
      assert.equal(accepted.state, "queued");
      assert.ok(waited >= 1_900, `it waited (${waited} ms)`);
      assert.ok(waited < 4_000, `no longer than the bound (${waited} ms)`);
      const [got, still] = await getJson(`${warren.url}/tasks/${accepted.id}?wait=2s`);
      assert.equal(got, 200, "a GET that runs out answers the task as it is");
      assert.equal(still.state, "running");
      const [, done] = await getJson(`${warren.url}/tasks/${accepted.id}?wait=2s`);
      assert.equal(done.state, "succeeded", "a GET answers at the end");
    });

    await t.step("an ended or unknown task is answered at once", async () => {
      const [, task] = await post(warren.url, "/tasks/echo?wait=5s", {});
      const started = Date.now();
      const [status, again] = await getJson(`${warren.url}/tasks/${task.id}?wait=5s`);
      assert.equal(status, 200);
      assert.equal(again.state, "succeeded");
      const [missing] = await getJson(`${warren.url}/tasks/no-such-task?wait=5s`);
      assert.equal(missing, 404);
      assert.ok(Date.now() - started < 2_000);
    });

    await t.step("a bad wait is 400, and nothing is enqueued", async () => {
      const [before, list] = await getJson(`${warren.url}/tasks?handler=echo&limit=1000`);
      assert.equal(before, 200);
      const [status, problem] = await post(warren.url, "/tasks/echo?wait=soon", {});
      assert.equal(status, 400);
      assert.match(problem.detail, /wait must be seconds .*\(WARREN_MAX_WAIT\)/);
      const [, after] = await getJson(`${warren.url}/tasks?handler=echo&limit=1000`);
      assert.equal(after.tasks.length, list.tasks.length);
      const [get] = await getJson(`${warren.url}/tasks/x?wait=-1`);
      assert.equal(get, 400);
    });

    await t.step("a client that goes away stops its wait; the server goes on", async () => {
      const gone = new AbortController();
      const request = fetch(`${warren.url}/tasks/steps?wait=30s`, {
        method: "POST",
        body: JSON.stringify({ steps: 2, ms: 500 }),
        signal: gone.signal,
      }).catch((error) => error);
      setTimeout(() => gone.abort(), 300);
      assert.equal((await request).name, "AbortError");
      const [status] = await post(warren.url, "/tasks/echo?wait=5s", {});
      assert.equal(status, 200);
    });
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
