/**
 * Roles: an api-only process and a worker-only process, sharing a broker and a prefix, together do
 * what one process of role "all" does.
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

Deno.test("roles: api and worker in separate processes", async () => {
  const api = await startWarren({ args: ["--role=api"], ready: false });
  let worker;
  try {
    const [status, body] = await waitFor(
      async () => {
        const answer = await getJson(`${api.url}/readyz`);
        return answer[1].reasons?.includes("not connected to the broker") ? undefined : answer;
      },
      10_000,
      "the api to connect",
    );
    assert.equal(status, 503, "no worker consumes yet");
    assert.ok(
      body.reasons.some((r: string) => /handler echo: no consumer on queue .*\.task\.echo/.test(r)),
      body.detail,
    );
    assert.match(api.output(), /handler echo: queue \S+, workers run elsewhere \(role api\)/);
    const [accepted, task] = await postTask(api.url, "echo", { split: true });
    assert.equal(accepted, 202, "tasks are accepted while no worker runs");

    worker = await startWarren({ prefix: api.prefix, args: ["--role=worker"] });
    assert.equal((await getJson(`${worker.url}/healthz`))[0], 200);
    assert.equal((await getJson(`${worker.url}/tasks`))[0], 404, "a worker serves no task routes");

    const done = await waitForState(api.url, task.id, "succeeded");
    assert.deepEqual(done.result, { echo: { split: true } });
    await waitFor(async () => (await getJson(`${api.url}/readyz`))[0] === 200, 10_000, "api ready");
    const [, handlers] = await getJson(`${api.url}/handlers`);
    const echo = handlers.handlers.find((h: { name: string }) => h.name === "echo");
    assert.equal(echo.queue.consumers, 1);
    assert.equal(echo.workers, null, "the api process runs no workers");
  } finally {
    if (worker) assert.equal(await worker.stop(), 0, worker.output());
    assert.equal(await api.stop(), 0, api.output());
    await deleteTopology(api.prefix);
  }
});
