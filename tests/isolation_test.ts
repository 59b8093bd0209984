/**
 * Requests are never blocked by handler work: handlers run in Web Workers, so while every worker
 * burns CPU the main thread keeps answering.
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

Deno.test("isolation: /healthz stays fast while every worker runs CPU-bound work", async () => {
  const warren = await startWarren();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [status, body] = await postTask(warren.url, "cpu", { ms: 1500 });
      assert.equal(status, 202);
      ids.push(body.id);
    }
    await waitFor(
      async () => {
        const [, body] = await getJson(`${warren.url}/tasks?handler=cpu&state=running`);
        return body.tasks.length === 2;
      },
      10_000,
      "both cpu workers to be busy",
    );

    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const start = performance.now();
      const response = await fetch(`${warren.url}/healthz`);
      await response.body?.cancel();
      latencies.push(performance.now() - start);
      assert.equal(response.status, 200);
    }
    const [, busy] = await getJson(`${warren.url}/tasks?handler=cpu&state=running`);
    assert.ok(busy.tasks.length >= 1, "the workers were still busy when we finished measuring");

    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99) - 1];
    console.log(
      `healthz under CPU load: p50 ${latencies[100].toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
    );
    assert.ok(p99 < 100, `p99 ${p99} ms`);

    await waitFor(
      async () => {
        const [, body] = await getJson(`${warren.url}/tasks?handler=cpu&state=succeeded`);
        return body.tasks.length === 6;
      },
      30_000,
      "all cpu tasks to succeed",
    );
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});

Deno.test("isolation: a handler that blocks its isolate shows running while it runs", async () => {
  const warren = await startWarren();
  try {
    for (let i = 0; i < 5; i++) {
      const [, body] = await postTask(warren.url, "cpu", { ms: 1500 });
      // Its "running" left the worker before the handler blocked the worker's thread.
      const task = await waitForState(warren.url, body.id, "running", 1_200);
      assert.equal(task.finished_at, null);
      await waitForState(warren.url, body.id, "succeeded", 10_000);
    }
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
