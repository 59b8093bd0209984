/**
 * Cancellation end to end: a waiting task (queued, delayed, retrying) ends `cancelled` and its
 * handler never runs; a running one has `ctx.signal` aborted with "cancelled", and a handler that
 * goes on (ignoring it, or blocking its thread) loses its worker after the grace. A worker started
 * after a cancel knows it, through restarts of every process, with two api processes on
 * PostgreSQL; cancelled is terminal for `?wait`, SSE, metrics and callbacks.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { createDatabase } from "./helpers/postgres.ts";
import { connectWs } from "./helpers/ws.ts";
import { parseExposition, sampleValue } from "./helpers/prometheus.ts";
import {
  deleteTopology,
  fleet,
  getJson,
  type Json,
  postTask,
  readSse,
  startWarren,
  uniquePrefix,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./fixtures/cancel", import.meta.url));
const NAMES = ["blocking", "failing", "patient", "stubborn"];

async function cancel(url: string, id: string): Promise<[number, Json]> {
  const response = await fetch(`${url}/tasks/${id}/cancel`, { method: "POST" });
  return [response.status, await response.json()];
}

/** The lines of a handler's log that name task `id`. */
async function linesOf(log: string, id: string): Promise<string[]> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return text.split("\n").filter((line) => line.includes(id));
}

async function post(url: string, handler: string, payload: unknown, query = "") {
  const [status, task] = await postTask(`${url}`, `${handler}${query}`, payload);
  assert.equal(status, 202, JSON.stringify(task));
  return task.id as string;
}

Deno.test("cancel: waiting tasks never run, running ones are stopped", async (t) => {
  const prefix = uniquePrefix("cancel");
  const log = await Deno.makeTempFile();
  const warren = await startWarren({ prefix, handlersDir: HANDLERS });
  try {
    await t.step("a delayed task: cancelled at once, and it never runs", async () => {
      const id = await post(warren.url, "patient", { log }, "?delay=2");
      const [status, task] = await cancel(warren.url, id);
      assert.equal(status, 200, JSON.stringify(task));
      assert.equal(task.state, "cancelled");
      assert.ok(task.finished_at);
      assert.deepEqual(task.history.map((h: Json) => h.state), ["queued", "cancelled"]);
      const [again, ended] = await cancel(warren.url, id);
      assert.equal(again, 409, "an ended task answers 409");
      assert.match(ended.detail, /has ended \(cancelled\)/);
      await new Promise((resolve) => setTimeout(resolve, 4_000)); // past its delay
      assert.deepEqual(await linesOf(log, id), [], "its handler never ran");
      const [, after] = await getJson(`${warren.url}/tasks/${id}`);
      assert.equal(after.state, "cancelled");
      const [missing] = await cancel(warren.url, "no-such-task");
      assert.equal(missing, 404);
    });

    await t.step("a retrying task: cancelled, and no attempt follows", async () => {
      const id = await post(warren.url, "failing", { log });
      await waitForState(warren.url, id, "retrying");
      const [status, task] = await cancel(warren.url, id);
      assert.equal(status, 200);
      assert.equal(task.state, "cancelled");
      await new Promise((resolve) => setTimeout(resolve, 5_000)); // past its 3 s backoff
      assert.equal((await linesOf(log, id)).length, 1, "one attempt only");
      const [, after] = await getJson(`${warren.url}/tasks/${id}`);
      assert.equal(after.state, "cancelled");
      assert.equal(after.attempts, 1);
    });

    await t.step("a running task: ctx.signal aborts with reason 'cancelled'", async () => {
      const id = await post(warren.url, "patient", { log, ms: 60_000 });
      await waitForState(warren.url, id, "running");
      const events = readSse(`${warren.url}/tasks/${id}/events`);
      const ws = await connectWs(warren.directUrl + "/ws", ["warren"]);
      ws.send({ type: "subscribe", task: id });
      await ws.next((m) => m.type === "subscribed" && m.task === id);
      const [status, task] = await cancel(warren.url, id);
      // Accepted: its worker ends it (which may be done by the time the answer is written).
      if (status === 202) assert.equal(task.state, "running");
      else assert.equal(`${status} ${task.state}`, "200 cancelled");
      assert.ok(task.history.some((h: Json) => h.state === "cancel"), "the request is in history");
      const [, done] = await getJson(`${warren.url}/tasks/${id}?wait=10s`);
      assert.equal(done.state, "cancelled", "?wait answers at the cancel");
      assert.deepEqual(await linesOf(log, id), [
        `started ${id} 1`,
        `aborted ${id} CancelledError: cancelled`,
      ]);
      const seen = await events;
      assert.equal(seen.at(-1)?.event, "cancelled", "SSE ends with it");
      const heard = await ws.next((m) => m.type === "event" && m.event === "cancelled");
      assert.equal(heard.task.state, "cancelled", "a WebSocket hears it");
      ws.socket.close();
      await ws.closed;
    });

    await t.step("a handler that pays no heed: its worker is ended after the grace", async () => {
      for (const handler of ["stubborn", "blocking"]) {
        const id = await post(warren.url, handler, { log, ms: 60_000 });
        await waitForState(warren.url, id, "running");
        assert.ok([200, 202].includes((await cancel(warren.url, id))[0]));
        await waitFor(
          async () => {
            const [, list] = await getJson(`${warren.url}/handlers`);
            const mine = list.handlers.find((h: Json) => h.name === handler);
            return mine?.workers.restarts >= 1 && mine.workers.consuming === 1;
          },
          10_000,
          `${handler}'s worker replaced`,
        );
        // A handler that blocks its thread cannot say it stopped: its task ends when the broker
        // hands its delivery back, once it sees the ended worker's connection gone.
        const done = await waitForState(warren.url, id, "cancelled", 30_000);
        assert.equal(done.attempts, 1);
        assert.deepEqual(await linesOf(log, id), [`started ${id} 1`], `${handler} never finished`);
      }
    });

    await t.step("POST ?wait= answers when its task is cancelled", async () => {
      const waiting = postTask(warren.url, "patient?wait=20s", { log, ms: 60_000 });
      const id = await waitFor(
        async () => {
          const [, list] = await getJson(`${warren.url}/tasks?handler=patient&state=running`);
          return list.tasks[0]?.id as string | undefined;
        },
        10_000,
        "a running patient task",
      );
      await cancel(warren.url, id);
      const [status, task] = await waiting;
      assert.equal(status, 200);
      assert.equal(task.state, "cancelled");
    });

    await t.step("bulk: every waiting task of a handler", async () => {
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push(await post(warren.url, "patient", { log }, "?delay=60"));
      const response = await fetch(`${warren.url}/handlers/patient/cancel`, { method: "POST" });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { handler: "patient", cancelled: 5, more: false });
      for (const id of ids) {
        const [, task] = await getJson(`${warren.url}/tasks/${id}`);
        assert.equal(task.state, "cancelled");
      }
      const unknown = await fetch(`${warren.url}/handlers/nope/cancel`, { method: "POST" });
      assert.equal(unknown.status, 404);
      await unknown.body?.cancel();
    });

    await t.step("metrics count cancelled tasks", async () => {
      const text = await (await fetch(`${warren.url}/metrics`)).text();
      const families = parseExposition(text);
      const value = (handler: string) =>
        sampleValue(families, "warren_tasks_cancelled_total", { handler }) ?? 0;
      assert.equal(value("patient"), 8);
      assert.equal(value("failing"), 1);
    });
  } finally {
    await warren.stop();
    await Deno.remove(log);
    await deleteTopology(prefix, NAMES);
  }
});

/** A receiver of callbacks: the bodies it got. */
function receiver() {
  const got: Json[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    got.push(await req.json());
    return new Response(null, { status: 204 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/hook`, got, close: () => server.shutdown() };
}

Deno.test("cancel: two api nodes on PostgreSQL, workers started after, restarts", async (t) => {
  const db = await createDatabase();
  const hooks = receiver();
  const log = await Deno.makeTempFile();
  const processes = fleet(uniquePrefix("cancel-nodes"), HANDLERS);
  const env = {
    WARREN_STORE: db.url,
    WARREN_WEBHOOK_SECRET: "whsec_" + btoa("a callback secret for the tests!"),
    WARREN_CALLBACK_ALLOW: "127.0.0.1",
  };
  try {
    const early = await processes.start("worker", env); // api nodes are ready with a consumer
    const a = await processes.start("api", env);
    const b = await processes.start("api", env);
    await early.stop(); // from here until the next step, no worker runs
    const control = await post(a.url, "patient", { log });
    const queued = await post(a.url, "patient", { log });
    const delayed = await post(a.url, "patient", { log }, "?delay=1");
    const [, hooked] = await postTask(a.url, "patient", { log }, { "callback-url": hooks.url });

    await t.step("a cancel on one node is seen on the other, live, with its callback", async () => {
      const events = readSse(`${a.url}/tasks/${queued}/events`);
      for (const id of [queued, delayed, hooked.id]) {
        const [status, task] = await cancel(b.url, id);
        assert.equal(status, 200, JSON.stringify(task));
      }
      assert.equal((await events).at(-1)?.event, "cancelled");
      const [, seen] = await getJson(`${a.url}/tasks/${delayed}`);
      assert.equal(seen.state, "cancelled");
      const [conflict] = await cancel(a.url, queued);
      assert.equal(conflict, 409);
      const callback = await waitFor(() => hooks.got[0], 15_000, "the callback");
      assert.equal(callback.id, hooked.id);
      assert.equal(callback.state, "cancelled");
    });

    await t.step(
      "workers started after the cancel, and after restarts, never run them",
      async () => {
        await a.stop();
        await b.stop();
        const first = await processes.start("worker", env);
        const c = await processes.start("api", env);
        await waitForState(c.url, control, "succeeded", 20_000);
        await first.stop();
        const second = await processes.start("worker", env);
        const again = await post(c.url, "patient", { log });
        await waitForState(c.url, again, "succeeded", 20_000);
        await new Promise((resolve) => setTimeout(resolve, 1_500)); // the delayed one is due
        for (const id of [queued, delayed, hooked.id]) {
          assert.deepEqual(await linesOf(log, id), [], "a cancelled task never ran");
          const [, task] = await getJson(`${c.url}/tasks/${id}`);
          assert.equal(task.state, "cancelled");
        }
        assert.equal(hooks.got.length, 1, "one callback per cancelled task, not one per delivery");

        const running = await post(c.url, "patient", { log, ms: 60_000 });
        await waitForState(c.url, running, "running");
        assert.ok([200, 202].includes((await cancel(c.url, running))[0]));
        await waitForState(c.url, running, "cancelled", 10_000); // its worker: another process
        assert.equal(second.output().includes("cancelled"), true);
      },
    );
  } finally {
    await processes.stop(NAMES);
    await hooks.close();
    await db.drop();
    await Deno.remove(log);
  }
});
