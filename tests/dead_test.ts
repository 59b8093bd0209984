/**
 * Dead letters over HTTP: a dead task sits in its handler's dead-letter queue with the reason,
 * and can be listed, replayed (one or all, same id, fresh attempts) and purged.
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

const post = (url: string, init: RequestInit = {}) =>
  fetch(url, { method: "POST", ...init }).then(async (r) => [r.status, await r.json()] as const);

Deno.test("dead letters: list, replay one, replay all, purge", async (t) => {
  const warren = await startWarren();
  const dead = `${warren.url}/handlers/fail/dead`;
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const [, body] = await postTask(warren.url, "fail", { message: `boom ${i}` });
      ids.push(body.id);
    }
    for (const id of ids) await waitForState(warren.url, id, "dead");

    await t.step("GET lists them with error, stack, attempts and times", async () => {
      const [status, body] = await getJson(dead);
      assert.equal(status, 200);
      assert.equal(body.total, 3);
      assert.deepEqual(body.tasks.map((t: { id: string }) => t.id).sort(), [...ids].sort());
      const letter = body.tasks.find((t: { id: string }) => t.id === ids[0]);
      assert.deepEqual(letter.payload, { message: "boom 0" });
      assert.equal(letter.error.message, "boom 0");
      assert.match(letter.error.stack, /fail\.ts/);
      assert.equal(letter.attempts, 1);
      assert.equal(letter.replays, 0);
      assert.ok(Date.parse(letter.failed_at) >= Date.parse(letter.created_at));
      const [, limited] = await getJson(`${dead}?limit=1`);
      assert.equal(limited.tasks.length, 1);
      assert.equal(limited.total, 3);
      const [, again] = await getJson(dead);
      assert.equal(again.total, 3, "listing takes nothing away");
      const [, handlers] = await getJson(`${warren.url}/handlers`);
      const fail = handlers.handlers.find((h: { name: string }) => h.name === "fail");
      assert.equal(fail.queue.dead, 3);
    });

    await t.step(
      "replaying one runs it again under its id with a fresh attempt count",
      async () => {
        const [status, body] = await post(`${dead}/${ids[0]}/replay`);
        assert.equal(status, 200);
        assert.deepEqual(body, { replayed: 1, ids: [ids[0]] });
        // The fail handler fails again: dead once more, after a second run.
        const task = await waitFor(
          async () => {
            const [, task] = await getJson(`${warren.url}/tasks/${ids[0]}`);
            return task.replays === 1 && task.state === "dead" ? task : undefined;
          },
          15_000,
          "the replayed task to die again",
        );
        assert.equal(task.attempts, 1);
        const steps = task.history.map((h: { state: string; replay: number }) =>
          `${h.state}:${h.replay}`
        );
        assert.deepEqual(steps, [
          "queued:0",
          "running:0",
          "dead:0",
          "queued:1",
          "running:1",
          "dead:1",
        ]);
        const [, list] = await getJson(dead);
        assert.equal(list.total, 3);
        assert.equal(list.tasks.find((t: { id: string }) => t.id === ids[0]).replays, 1);
      },
    );

    await t.step("replaying an id that is not there is a 404", async () => {
      const [status, problem] = await post(`${dead}/no-such-task/replay`);
      assert.equal(status, 404);
      assert.match(problem.detail, /no task "no-such-task" in the dead letters of fail/);
      const [unknown] = await getJson(`${warren.url}/handlers/nope/dead`);
      assert.equal(unknown, 404);
    });

    await t.step("replay all puts every letter back; each runs once more", async () => {
      const [status, body] = await post(`${dead}/replay`);
      assert.equal(status, 200);
      assert.equal(body.replayed, 3);
      await waitFor(
        async () => {
          const [, list] = await getJson(dead);
          return list.total === 3 &&
            list.tasks.every((t: { replays: number; id: string }) =>
              t.replays === (t.id === ids[0] ? 2 : 1)
            );
        },
        15_000,
        "every replayed task back in the dead letters",
      );
    });

    await t.step("a replay of a handler with retries starts counting attempts again", async () => {
      const [, body] = await postTask(warren.url, "flaky", {}); // fails every attempt
      await waitForState(warren.url, body.id, "dead", 20_000);
      const [status] = await post(`${warren.url}/handlers/flaky/dead/${body.id}/replay`);
      assert.equal(status, 200);
      const task = await waitFor(
        async () => {
          const [, task] = await getJson(`${warren.url}/tasks/${body.id}`);
          return task.replays === 1 && task.state === "dead" ? task : undefined;
        },
        20_000,
        "the replay to die after its own three attempts",
      );
      assert.equal(task.attempts, 3);
      assert.equal(task.error.message, "attempt 3 failed", "ctx.attempt began at 1 again");
      const steps = task.history.map((h: { state: string; attempt: number; replay: number }) =>
        `${h.state}:${h.attempt}:${h.replay}`
      );
      const run = (replay: number) => [
        `queued:0:${replay}`,
        `running:1:${replay}`,
        `retrying:1:${replay}`,
        `running:2:${replay}`,
        `retrying:2:${replay}`,
        `running:3:${replay}`,
        `dead:3:${replay}`,
      ];
      assert.deepEqual(steps, [...run(0), ...run(1)]);
    });

    await t.step("DELETE purges them", async () => {
      const response = await fetch(dead, { method: "DELETE" });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { purged: 3 });
      const [, list] = await getJson(dead);
      assert.equal(list.total, 0);
      assert.deepEqual(list.tasks, []);
    });
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix);
  }
});
