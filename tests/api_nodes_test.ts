/**
 * Several api nodes, one truth: two api processes and a worker process on one PostgreSQL store
 * answer every task alike, whichever node took it, and each node's live views (SSE, `?wait=`,
 * WebSocket, the dashboard's stream) hear every task.
 * Two api processes on one SQLite file are refused.
 */

import assert from "node:assert/strict";
import { createDatabase } from "./helpers/postgres.ts";
import {
  deleteTopology,
  getJson,
  type Json,
  postTask,
  type Process,
  readSse,
  runWarren,
  startWarren,
  uniquePrefix,
  waitFor,
} from "./helpers/warren.ts";
import { parseExposition, sampleValue } from "./helpers/prometheus.ts";
import { connectWs } from "./helpers/ws.ts";
import { Webhook } from "standardwebhooks";

const SECRET = "whsec_" + btoa("a callback secret for api nodes");

Deno.test("api nodes: a second api process on one SQLite file is refused, told to use PostgreSQL", async () => {
  const prefix = uniquePrefix("sqlite-twice");
  // Not ready without a worker process on its queues; it listens, and that is enough here.
  const first = await startWarren({ prefix, args: ["--role=api"], ready: false });
  try {
    const second = await runWarren({
      prefix,
      args: ["--role=api"],
      env: { WARREN_STORE: first.storePath },
    });
    assert.equal(second.code, 2, second.output);
    const lines = second.output.split("\n").filter((line) => line.startsWith("warren: "));
    assert.equal(lines.length, 1, second.output);
    assert.match(lines[0], /WARREN_STORE .* is in use by another Warren api process/);
    assert.match(lines[0], /set WARREN_STORE to a postgres:\/\/ URL/);
    const [status] = await getJson(`${first.url}/tasks`);
    assert.equal(status, 200, "the first one goes on");
  } finally {
    await first.stop();
    await deleteTopology(prefix);
  }
});

Deno.test("api nodes: two api nodes on PostgreSQL answer every task alike", async (t) => {
  const prefix = uniquePrefix("api-nodes");
  const db = await createDatabase();
  const started: Process[] = [];
  const start = async (role: string, env: Record<string, string> = {}) => {
    const process = await startWarren({ prefix, env, args: [`--role=${role}`] });
    started.push(process);
    return process;
  };
  try {
    await start("worker");
    const hooks = { WARREN_WEBHOOK_SECRET: SECRET, WARREN_CALLBACK_ALLOW: "127.0.0.1" };
    const a = await start("api", { WARREN_STORE: db.url, ...hooks });
    const b = await start("api", { WARREN_STORE: db.url, ...hooks });
    await t.step(
      "a task POSTed to A is on B once A answered 202; B's SSE hears it end",
      async () => {
        const [status, task] = await postTask(a.url, "slow", { ms: 150 });
        assert.equal(status, 202);
        const [found, onB] = await getJson(`${b.url}/tasks/${task.id}`);
        assert.equal(found, 200, "committed before the 202");
        assert.ok(["queued", "running", "succeeded"].includes(onB.state), onB.state);
        const events = await readSse(`${b.url}/tasks/${task.id}/events`);
        assert.equal(events.at(-1)?.event, "succeeded", JSON.stringify(events));
      },
    );

    await t.step("tasks POSTed to both end alike on both; counters sum to each once", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) {
        const [status, task] = await postTask(i % 2 ? b.url : a.url, "echo", { i });
        assert.equal(status, 202);
        ids.push(task.id);
      }
      const states = async (url: string) => {
        const all = await Promise.all(ids.map((id) => getJson(`${url}/tasks/${id}`)));
        return all.map(([, task]: [number, Json]) => task.state);
      };
      await waitFor(
        async () => (await states(a.url)).every((s) => s === "succeeded"),
        20_000,
        "100 tasks succeeded on A",
      );
      assert.deepEqual(await states(b.url), ids.map(() => "succeeded"));
      const succeeded = async (url: string) => {
        const text = await (await fetch(`${url}/metrics`)).text();
        return sampleValue(parseExposition(text), "warren_tasks_succeeded_total", {
          handler: "echo",
        }) ?? 0;
      };
      assert.equal((await succeeded(a.url)) + (await succeeded(b.url)), 100);
    });

    await t.step("?wait= on either node hears the end, whichever node recorded it", async () => {
      for (let i = 0; i < 6; i++) {
        // The two nodes' recorders share the events queue: each records about half the tasks.
        const response = await fetch(`${a.url}/tasks/echo?wait=10s`, {
          method: "POST",
          body: JSON.stringify({ i }),
        });
        const done = await response.json();
        assert.equal(response.status, 200, JSON.stringify(done));
        assert.equal(done.state, "succeeded");
        const [, accepted] = await postTask(a.url, "slow", { ms: 100 });
        const [status, onB] = await getJson(`${b.url}/tasks/${accepted.id}?wait=10s`);
        assert.equal(status, 200);
        assert.equal(onB.state, "succeeded", "B heard the end of A's task");
      }
    });

    await t.step("an event published on A makes tasks B shows with their event", async () => {
      const response = await fetch(`${a.url}/events/fixture.echo.nodes`, {
        method: "POST",
        body: JSON.stringify({ from: "A" }),
      });
      const event = await response.json();
      assert.equal(response.status, 202);
      const [task] = event.tasks;
      const [status, onB] = await getJson(`${b.url}/tasks/${task.id}?wait=10s`);
      assert.equal(status, 200);
      assert.equal(onB.state, "succeeded");
      assert.deepEqual(onB.event, { id: event.id, topic: "fixture.echo.nodes" });
    });

    await t.step("a WebSocket on B hears a task POSTed to A", async () => {
      const ws = await connectWs(`${b.directUrl}/ws`, ["warren"]);
      await ws.next((m) => m.type === "ready");
      ws.send({ type: "subscribe", handler: "echo" });
      await ws.next((m) => m.type === "subscribed");
      const [, task] = await postTask(a.url, "echo", { heard: "on B" });
      await ws.next((m) => m.type === "event" && m.task.id === task.id && m.event === "succeeded");
      ws.socket.close();
      await ws.closed;
    });

    await t.step("callbacks of tasks POSTed to either node arrive once each, signed", async () => {
      const got: string[] = [];
      const receiver = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        async (req) => {
          const body = await req.text();
          got.push((new Webhook(SECRET).verify(body, Object.fromEntries(req.headers)) as Json).id);
          return new Response(null, { status: 204 });
        },
      );
      try {
        const callback = `http://127.0.0.1:${receiver.addr.port}/done`;
        const ids: string[] = [];
        for (let i = 0; i < 10; i++) {
          const [status, task] = await postTask(i % 2 ? b.url : a.url, "echo", { i }, {
            "callback-url": callback,
          });
          assert.equal(status, 202);
          ids.push(task.id);
        }
        await waitFor(() => got.length >= 10, 20_000, "10 callbacks");
        assert.deepEqual([...got].sort(), [...ids].sort());
      } finally {
        await receiver.shutdown();
      }
    });

    await t.step("the dashboard's stream on B hears a task POSTed to A", async () => {
      const stream = await fetch(`${b.url}/stream`, { signal: AbortSignal.timeout(10_000) });
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      const [, task] = await postTask(a.url, "echo", { seen: "on B" });
      let text = "";
      while (!text.includes(task.id) || !text.includes("succeeded")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      await reader.cancel();
      assert.ok(text.includes(task.id), "B's stream told of A's task");
    });
  } finally {
    await Promise.all(started.map((process) => process.stop()));
    await deleteTopology(prefix);
    await db.drop();
  }
});
