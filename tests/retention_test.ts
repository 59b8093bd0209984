/**
 * Retention: ended tasks are deleted once they outlive it (dead ones keep longer), a pruned task
 * is a 404 that says it expired, the SQLite file stops growing under a steady load, and two api
 * nodes on PostgreSQL prune side by side.
 */

import assert from "node:assert/strict";
import { pruneRules } from "../lib/api/retention.ts";
import { createDatabase } from "./helpers/postgres.ts";
import {
  deleteTopology,
  fleet,
  getJson,
  type Json,
  postTask,
  startWarren,
  uniquePrefix,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

const SHORT = {
  WARREN_RETENTION: "1s",
  WARREN_RETENTION_DEAD: "1h",
  WARREN_PRUNE_INTERVAL: "300ms",
};

Deno.test("retention: rules by handler, then for every other handler", () => {
  const day = 86_400_000;
  const handlers = [
    { name: "keep", config: { retention: { succeeded: 90 * day } } },
    { name: "plain", config: { retention: {} } },
  ] as Parameters<typeof pruneRules>[0];
  const rules = pruneRules(handlers, { succeeded: 7 * day, dead: 30 * day }, 100 * day);
  assert.deepEqual(rules, [
    { state: "succeeded", before: 10 * day, handler: "keep" },
    { state: "succeeded", before: 93 * day, except: ["keep"] },
    { state: "dead", before: 70 * day, handler: "keep" },
    { state: "dead", before: 70 * day, except: ["keep"] },
    { state: "cancelled", before: 10 * day, handler: "keep" },
    { state: "cancelled", before: 93 * day, except: ["keep"] },
  ]);
});

Deno.test("retention: ended tasks go after their retention; dead ones keep longer", async () => {
  const warren = await startWarren({ env: SHORT });
  try {
    const [, done] = await postTask(warren.url, "echo", { n: 1 });
    const [, dead] = await postTask(warren.url, "fail", {});
    await waitForState(warren.url, done.id, "succeeded");
    await waitForState(warren.url, dead.id, "dead");
    const gone = await waitFor(
      async () => {
        const [status, body] = await getJson(`${warren.url}/tasks/${done.id}`);
        return status === 404 ? body : undefined;
      },
      10_000,
      "the succeeded task to be pruned",
    );
    assert.equal(gone.title, "Task expired");
    assert.match(gone.detail, /has expired: ended tasks are deleted after their retention/);
    const [kept] = await getJson(`${warren.url}/tasks/${dead.id}`);
    assert.equal(kept, 200, "a dead task keeps for WARREN_RETENTION_DEAD");
    const [never, unknown] = await getJson(`${warren.url}/tasks/no-such-task`);
    assert.equal(never, 404);
    assert.equal(unknown.title, "Unknown task", "an id that tells no time is just unknown");
    await waitFor(() => /deleted \d+ ended task\(s\) past their retention/.test(warren.output()));
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});

Deno.test("retention: under a steady load the SQLite file stops growing", async () => {
  const warren = await startWarren({ env: SHORT });
  const size = async () => {
    const files = [warren.storePath, `${warren.storePath}-wal`];
    const sizes = await Promise.all(files.map((f) => Deno.stat(f).then((s) => s.size, () => 0)));
    return sizes.reduce((a, b) => a + b, 0);
  };
  try {
    const payload = { blob: "x".repeat(20_000) };
    const sizes: number[] = [];
    for (let wave = 0; wave < 6; wave++) {
      const ids: string[] = [];
      for (let i = 0; i < 150; i++) ids.push((await postTask(warren.url, "echo", payload))[1].id);
      await waitForState(warren.url, ids.at(-1)!, "succeeded", 20_000);
      // Until this wave is pruned too: only the next wave's tasks should hold pages.
      await waitFor(
        async () => (await getJson(`${warren.url}/tasks/${ids[0]}`))[0] === 404,
        10_000,
      );
      sizes.push(await size());
    }
    const [, page] = await getJson(`${warren.url}/tasks?handler=echo&limit=1000`);
    assert.ok(page.tasks.length < 150, `${page.tasks.length} tasks left`);
    // 900 tasks of 20 KB (and a result as large) went through: about 36 MB if none were freed.
    assert.ok(
      sizes.at(-1)! <= Math.max(...sizes.slice(0, 3)) * 1.25,
      `the file kept growing: ${sizes.map((s) => (s / 1e6).toFixed(1)).join(", ")} MB`,
    );
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});

Deno.test("retention: two api nodes on PostgreSQL prune side by side", async () => {
  const prefix = uniquePrefix("retention-nodes");
  const db = await createDatabase();
  const { start, stop } = fleet(prefix);
  try {
    await start("worker");
    const a = await start("api", { WARREN_STORE: db.url, ...SHORT });
    const b = await start("api", { WARREN_STORE: db.url, ...SHORT });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      ids.push((await postTask(i % 2 ? a.url : b.url, "echo", { i }))[1].id);
    }
    await waitFor(
      async () => {
        const answers = await Promise.all(ids.map((id) => getJson(`${b.url}/tasks/${id}`)));
        return answers.every(([status]: [number, Json]) => status === 404);
      },
      15_000,
      "every task pruned",
    );
    assert.doesNotMatch(a.output() + b.output(), /cannot prune/);
  } finally {
    await stop().finally(() => db.drop());
  }
});
