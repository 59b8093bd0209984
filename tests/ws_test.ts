/**
 * `GET /ws`: task events over a WebSocket, with the token in the first message or a subprotocol,
 * subscriptions to a task, a handler or everything, a slow client closed before it costs the
 * server unbounded memory, another site's page refused, and a close at shutdown.
 */

import assert from "node:assert/strict";
import { deleteTopology, getJson, postTask, startWarren, waitForState } from "./helpers/warren.ts";
import { connectWs, rawWs } from "./helpers/ws.ts";

const TOKEN = "ws-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
const PROTOCOLS = ["warren", `warren.bearer.${TOKEN}`];

Deno.test("ws: subscriptions to a task, a handler, everything", async (t) => {
  const warren = await startWarren({ env: { WARREN_API_TOKEN: TOKEN } });
  const url = `${warren.directUrl}/ws`;
  try {
    await t.step("the token as a subprotocol; a task's events until it ends", async () => {
      const ws = await connectWs(url, PROTOCOLS);
      assert.equal(ws.socket.protocol, "warren", "never the token's protocol");
      await ws.next((m) => m.type === "ready");
      const [, accepted] = await postTask(warren.url, "steps", { steps: 2, ms: 200 }, auth);
      ws.send({ type: "subscribe", task: accepted.id });
      await ws.next((m) => m.type === "subscribed" && m.task === accepted.id);
      const end = await ws.next((m) => m.type === "event" && m.event === "succeeded");
      const events = ws.messages.filter((m) => m.type === "event").map((m) => m.event);
      assert.ok(events.includes("progress"), events.join());
      const [, task] = await getJson(`${warren.url}/tasks/${accepted.id}`, { headers: auth });
      assert.deepEqual(end.task, task, "the same task object as GET and SSE");
      const versions = ws.messages.filter((m) => m.type === "event").map((m) => m.version);
      assert.deepEqual(versions, [...versions].sort((a, b) => a - b), "in order, no repeats");
      assert.equal(new Set(versions).size, versions.length);
      ws.socket.close();
      await ws.closed;
    });

    await t.step("the token in the first message; a handler's tasks, then everything", async () => {
      const ws = await connectWs(url);
      ws.send({ type: "auth", token: TOKEN });
      await ws.next((m) => m.type === "ready");
      ws.send({ type: "subscribe", handler: "echo" });
      await ws.next((m) => m.type === "subscribed" && m.handler === "echo");
      const [, failing] = await postTask(warren.url, "fail", {}, auth);
      const [, echo] = await postTask(warren.url, "echo", { n: 1 }, auth);
      await ws.next((m) => m.type === "event" && m.task.id === echo.id && m.event === "succeeded");
      await waitForState(warren.url, failing.id, "dead", 10_000, { headers: auth });
      assert.ok(!ws.messages.some((m) => m.task?.id === failing.id), "only echo's");

      ws.send({ type: "unsubscribe", handler: "echo" });
      ws.send({ type: "subscribe", all: true });
      await ws.next((m) => m.type === "subscribed" && m.all === true);
      const [, other] = await postTask(warren.url, "fail", {}, auth);
      await ws.next((m) => m.type === "event" && m.task.id === other.id && m.event === "dead");
      ws.send({ type: "unsubscribe", all: true });
      await ws.next((m) => m.type === "unsubscribed" && m.all === true);
      const count = ws.messages.length;
      const [, quiet] = await postTask(warren.url, "echo", {}, auth);
      await waitForState(warren.url, quiet.id, "succeeded", 10_000, { headers: auth });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(ws.messages.length, count, "nothing after unsubscribing");
      ws.socket.close();
      await ws.closed;
    });

    await t.step("bad requests are answered with an error; the connection stays", async () => {
      const ws = await connectWs(url, PROTOCOLS);
      await ws.next((m) => m.type === "ready");
      ws.send({ type: "subscribe" });
      const usage = await ws.next((m) => m.type === "error");
      assert.equal(usage.status, 400);
      assert.match(usage.detail, /"task": "<id>"/);
      ws.socket.send("{oops");
      await ws.next((m) => m.type === "error" && /not JSON/.test(m.detail));
      ws.send({ type: "subscribe", task: "no-such-task" });
      await ws.next((m) => m.type === "error" && m.status === 404 && /no-such-task/.test(m.detail));
      ws.send({ type: "subscribe", handler: "nope" });
      await ws.next((m) => m.type === "error" && m.status === 404 && /nope/.test(m.detail));
      assert.equal(ws.socket.readyState, WebSocket.OPEN);
      ws.socket.close();
      await ws.closed;
    });

    await t.step("no token, or a wrong one, is closed with 4401", async () => {
      const wrong = await connectWs(url, ["warren", "warren.bearer.wrong-token-0123456789"]);
      assert.equal(await wrong.closed, 4401);
      const silent = await connectWs(url);
      silent.send({ type: "subscribe", all: true });
      assert.equal(await silent.closed, 4401);
      const guess = await connectWs(url);
      guess.send({ type: "auth", token: "wrong-token-0123456789" });
      assert.equal(await guess.closed, 4401);
      assert.equal(guess.messages.length, 0, "nothing was sent to it");
    });

    await t.step("a page of another site is refused; a plain GET is told to upgrade", async () => {
      const evil = await rawWs(url, {
        Origin: "http://evil.example",
        "Sec-WebSocket-Protocol": PROTOCOLS.join(", "),
      });
      assert.match(evil.status, / 403 /);
      evil.close();
      const own = await rawWs(url, {
        Origin: new URL(warren.directUrl).origin,
        "Sec-WebSocket-Protocol": PROTOCOLS.join(", "),
      });
      assert.match(own.status, / 101 /);
      own.close();
      const plain = await fetch(`${warren.url}/ws`);
      assert.equal(plain.status, 426);
      assert.equal((await plain.json()).title, "Upgrade required");
    });

    await t.step("a client that does not read is closed before it holds 1 MiB", async () => {
      const slow = await rawWs(url, { "Sec-WebSocket-Protocol": PROTOCOLS.join(", ") });
      assert.match(slow.status, / 101 /);
      await slow.sendText(JSON.stringify({ type: "subscribe", all: true }));
      const big = "x".repeat(200_000);
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) {
        const [status, task] = await postTask(warren.url, "echo", { big, i }, auth);
        assert.equal(status, 202);
        ids.push(task.id);
      }
      await waitForState(warren.url, ids.at(-1)!, "succeeded", 30_000, { headers: auth });
      const { code, bytes } = await slow.readUntilClose(30_000);
      assert.equal(code, 4008, "closed as too slow");
      assert.ok(bytes < 60 * 3 * 200_000, `it did not get everything (${bytes} bytes)`);
      slow.close();
      const [status] = await postTask(warren.url, "echo", {}, auth);
      assert.equal(status, 202, "the server goes on");
    });

    await t.step("a client is closed with 1001 when the server stops", async () => {
      const ws = await connectWs(url, PROTOCOLS);
      await ws.next((m) => m.type === "ready");
      ws.send({ type: "subscribe", all: true });
      await ws.next((m) => m.type === "subscribed");
      const stopped = warren.stop();
      assert.equal(await ws.closed, 1001);
      assert.equal(await stopped, 0, warren.output());
    });
  } finally {
    await warren.stop().finally(() => deleteTopology(warren.prefix));
  }
});
