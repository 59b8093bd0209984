/**
 * Dead letters over HTTP: a dead task sits in its handler's dead-letter queue with the reason,
 * and can be listed, replayed (one or all, same id, fresh attempts) and purged.
 */

import assert from "node:assert/strict";
import { connect } from "amqplib";
import {
  AMQP_URL,
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

    await t.step("GET lists them, newest first, with error, attempts and times", async () => {
      const [status, body] = await getJson(dead);
      assert.equal(status, 200);
      assert.equal(body.total, 3);
      assert.deepEqual(body.tasks.map((t: { id: string }) => t.id), [...ids].reverse());
      const letter = body.tasks.find((t: { id: string }) => t.id === ids[0]);
      assert.deepEqual(letter.error, { name: "TypeError", message: "boom 0" });
      assert.equal(letter.payload, undefined, "a list is not a payload dump");
      assert.equal(letter.attempts, 1);
      assert.equal(letter.replays, 0);
      assert.ok(Date.parse(letter.failed_at) >= Date.parse(letter.created_at));
      assert.equal(letter.links.self, `/tasks/${ids[0]}`);
      const [, task] = await getJson(`${warren.url}${letter.links.self}`);
      assert.deepEqual(task.payload, { message: "boom 0" }, "the task has it all");
      assert.match(task.error.stack, /fail\.ts/);
      const [, limited] = await getJson(`${dead}?limit=2`);
      assert.equal(limited.tasks.length, 2);
      assert.equal(limited.total, 3);
      const [, rest] = await getJson(`${dead}?limit=2&cursor=${limited.next_cursor}`);
      assert.deepEqual(rest.tasks.map((t: { id: string }) => t.id), [ids[0]]);
      assert.equal(rest.next_cursor, null);
      const [, handlers] = await getJson(`${warren.url}/handlers`);
      const fail = handlers.handlers.find((h: { name: string }) => h.name === "fail");
      assert.equal(fail.queue.dead, 3);
    });

    await t.step(
      "looking never wears a letter out: 50 lists leave every one untouched",
      async () => {
        for (let i = 0; i < 50; i++) assert.equal((await getJson(dead))[1].tasks.length, 3);
        // Take a look inside the queue itself: no letter was ever delivered, so none counts a
        // delivery (from RabbitMQ 4.0 a quorum queue drops a message past 20 of them).
        const connection = await connect(AMQP_URL);
        try {
          const ch = await connection.createChannel();
          const queue = `${warren.prefix}.dead.fail`;
          assert.equal((await ch.checkQueue(queue)).messageCount, 3);
          const counts = [];
          for (let i = 0; i < 3; i++) {
            const message = await ch.get(queue, { noAck: false });
            assert.ok(message, `letter ${i} is there`);
            counts.push(message.properties.headers?.["x-delivery-count"] ?? 0);
          }
          assert.deepEqual(counts, [0, 0, 0]);
          await ch.close(); // gives the three back (their first delivery)
        } finally {
          await connection.close();
        }
      },
    );

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
      assert.equal((await post(`${warren.url}/handlers/nope/dead/replay`))[0], 404);
      assert.equal((await post(`${warren.url}/handlers/nope/dead/x/replay`))[0], 404);
      const purge = await fetch(`${warren.url}/handlers/nope/dead`, { method: "DELETE" });
      assert.equal(purge.status, 404);
      await purge.body?.cancel();
      for (const query of ["limit=0", "limit=1001", "limit=ten", "cursor=bad"]) {
        const [status, problem] = await getJson(`${dead}?${query}`);
        assert.equal(status, 400, query);
        assert.match(problem.detail, /limit must be|cursor must be/);
      }
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

    await t.step(
      "replaying the last letter passes over the others without wearing them",
      async () => {
        const queue = `${warren.prefix}.dead.fail`;
        /** The delivery counts of the letters, in queue order (looking counts one more each). */
        const look = async () => {
          const connection = await connect(AMQP_URL);
          try {
            const ch = await connection.createChannel();
            const letters: [string, number][] = [];
            for (let message; (message = await ch.get(queue, { noAck: false }));) {
              const count = Number(message.properties.headers?.["x-delivery-count"] ?? 0);
              letters.push([message.properties.messageId, count]);
            }
            await ch.close();
            return letters;
          } finally {
            await connection.close();
          }
        };
        const before = await look();
        assert.equal(before.length, 3);
        const last = before.at(-1)![0];
        await waitFor(async () => (await look()).length === 3, 5_000, "the letters back");
        const [status] = await post(`${dead}/${last}/replay`);
        assert.equal(status, 200);
        const after = await look();
        const passedOver = after.filter(([id]) => id !== last);
        assert.equal(passedOver.length, 2);
        for (const [id, count] of passedOver) {
          assert.ok(count <= 2, `${id} counted ${count} deliveries: only our own two looks`);
        }
        await waitFor(
          async () => (await getJson(dead))[1].tasks.length === 3,
          10_000,
          "the replayed letter dead again",
        );
      },
    );

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
