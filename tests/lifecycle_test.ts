/**
 * A Warren process's life: graceful stop lets in-flight handlers finish and exits 0, and a
 * restart keeps the task history.
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

Deno.test("lifecycle: SIGTERM finishes in-flight tasks; a restart keeps history", async () => {
  let warren = await startWarren();
  const { prefix, storePath } = warren;
  try {
    const [, quick] = await postTask(warren.url, "echo", { before: "restart" });
    await waitForState(warren.url, quick.id, "succeeded");
    const [, slow] = await postTask(warren.url, "steps", { steps: 5, ms: 200 });
    await waitForState(warren.url, slow.id, "running");

    assert.equal(await warren.stop("SIGTERM"), 0, warren.output());
    assert.match(warren.output(), /stopping: no new tasks/);
    assert.match(warren.output(), /stopped/);

    warren = await startWarren({ prefix, storePath });
    const [, kept] = await getJson(`${warren.url}/tasks/${quick.id}`);
    assert.equal(kept.state, "succeeded");
    assert.deepEqual(kept.result, { echo: { before: "restart" } });
    const finished = await waitForState(warren.url, slow.id, "succeeded");
    assert.deepEqual(finished.result, { steps: 5 });
    assert.equal(finished.attempts, 1, "it finished before the stop, not after a redelivery");

    const [, list] = await getJson(`${warren.url}/tasks`);
    const ids = list.tasks.map((t: { id: string }) => t.id);
    assert.ok(ids.includes(quick.id) && ids.includes(slow.id));
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(prefix);
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
