/**
 * Counters that are exact: thousands of tasks driven through fast enough that a task's events share
 * commits, and every `warren_tasks_*_total` equals what the store recorded.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { parseExposition, sampleValue } from "./helpers/prometheus.ts";
import { deleteTopology, getJson, startWarren, waitFor } from "./helpers/warren.ts";

const TASKS = 20_000;
const HANDLERS = fromFileUrl(new URL("./fixtures/counters", import.meta.url));

/** POSTs `count` tasks from `connections` loops at once; resolves with their ids. */
async function flood(url: string, handler: string, count: number, connections = 64) {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < count) {
      next++;
      const response = await fetch(`${url}/tasks/${handler}`, { method: "POST", body: "{}" });
      assert.equal(response.status, 202);
      ids.push((await response.json()).id);
    }
  }));
  return ids;
}

Deno.test("counters: every warren_tasks_*_total equals the store, however events are batched", async () => {
  const warren = await startWarren({ contract: false, handlersDir: HANDLERS });
  try {
    const ids = await flood(warren.url, "noop", TASKS);
    assert.equal(ids.length, TASKS);
    const succeeded = () =>
      getJson(`${warren.url}/tasks?handler=noop&state=succeeded&limit=1000`).then(async () => {
        let total = 0;
        for (let cursor = "";;) {
          const [, page] = await getJson(
            `${warren.url}/tasks?handler=noop&state=succeeded&limit=1000${cursor}`,
          );
          total += page.tasks.length;
          if (!page.next_cursor) return total;
          cursor = `&cursor=${page.next_cursor}`;
        }
      });
    await waitFor(async () => (await succeeded()) === TASKS, 60_000, "every task succeeded");
    const families = parseExposition(await (await fetch(`${warren.url}/metrics`)).text());
    const counter = (name: string) => sampleValue(families, name, { handler: "noop" }) ?? 0;
    assert.deepEqual(
      {
        enqueued: counter("warren_tasks_enqueued_total"),
        started: counter("warren_tasks_started_total"),
        succeeded: counter("warren_tasks_succeeded_total"),
        failed: counter("warren_tasks_failed_total"),
      },
      { enqueued: TASKS, started: TASKS, succeeded: TASKS, failed: 0 },
    );
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix, ["noop"]);
  }
});
