/**
 * The payload rules hold for every producer: POST, a handler's ctx.enqueue and any AMQP client.
 * A delivery that breaks one ends dead at once, with the reason, without running its handler;
 * nothing any producer sends can break a read afterwards.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import { MAX_DEPTH, readPayload, toJson, tooDeep } from "../lib/payload.ts";
import { compileSchema } from "../lib/schema.ts";
import {
  AMQP_URL,
  deleteTopology,
  getJson,
  postTask,
  readSse,
  startWarren,
  waitForState,
} from "./helpers/warren.ts";

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("payload rules: size, JSON, depth, schema", () => {
  const rules = { maxBytes: 64, validate: compileSchema({ type: "object", required: ["n"] }) };
  assert.deepEqual(readPayload(bytes('{"n":1}'), rules), { ok: true, payload: { n: 1 } });
  const kind = (text: string) => {
    const check = readPayload(bytes(text), { ...rules, maxBytes: 100_000 });
    return check.ok ? "ok" : check.refusal.kind;
  };
  assert.equal(kind("{oops"), "not-json");
  assert.equal(kind(nested(MAX_DEPTH + 1)), "too-deep");
  assert.equal(kind("{}"), "schema");
  const big = readPayload(bytes(`{"n":"${"x".repeat(100)}"}`), rules);
  assert.ok(!big.ok && big.refusal.kind === "too-large");
  assert.match(big.ok ? "" : big.refusal.detail, /over the limit of 64 bytes \(WARREN_MAX_BODY\)/);
  assert.deepEqual(readPayload(bytes(""), { maxBytes: 10 }), { ok: true, payload: {} });

  assert.equal(tooDeep(nested(MAX_DEPTH), MAX_DEPTH), false);
  assert.equal(tooDeep(nested(MAX_DEPTH + 1), MAX_DEPTH), true);
  assert.equal(tooDeep(`["${"[".repeat(500)}"]`, MAX_DEPTH), false, "brackets in strings");
  assert.equal(tooDeep(`["\\"${"[".repeat(500)}"]`, MAX_DEPTH), false, "escaped quotes");
  assert.throws(() => toJson(JSON.parse(nested(MAX_DEPTH + 1))), /deeper than 128 levels/);
  assert.equal(toJson(undefined), null);
});

Deno.test("payload: every producer meets the rules; reads survive what any producer sent", async (t) => {
  const warren = await startWarren({ env: { WARREN_MAX_BODY: "6MiB" } });
  const connection = await connect(AMQP_URL);
  const ch = await connection.createConfirmChannel();
  const raw = async (handler: string, body: string, headers: Record<string, unknown> = {}) => {
    const id = `raw-${crypto.randomUUID()}`;
    ch.sendToQueue(`${warren.prefix}.task.${handler}`, Buffer.from(body), {
      messageId: id,
      persistent: true,
      headers,
    });
    await ch.waitForConfirms();
    return id;
  };
  /** A task that died before its handler ran: one attempt, no running step. */
  const refusedAtConsume = async (id: string, reason: RegExp) => {
    const task = await waitForState(warren.url, id, "dead");
    assert.equal(task.error.name, "InvalidPayload");
    assert.match(task.error.message, reason);
    assert.equal(task.attempts, 1);
    assert.deepEqual(task.history.map((h: { state: string }) => h.state), ["queued", "dead"]);
    return task;
  };
  try {
    await t.step("POST: JSON nested deeper than 128 levels is a 400", async () => {
      for (const depth of [MAX_DEPTH + 1, 8_000]) {
        const [status, problem] = await postTask(warren.url, "echo", nested(depth));
        assert.equal(status, 400, `depth ${depth}`);
        assert.match(problem.detail, /deeper than 128 levels/);
      }
      const [status, body] = await postTask(warren.url, "echo", nested(MAX_DEPTH - 1));
      assert.equal(status, 202, "127 levels are fine (echo adds one)");
      await waitForState(warren.url, body.id, "succeeded");
    });

    await t.step("AMQP: deep JSON ends dead at consume; every read still answers", async () => {
      const id = await raw("echo", nested(8_000));
      await refusedAtConsume(id, /deeper than 128 levels/);
      const [listed, list] = await getJson(`${warren.url}/tasks?limit=100`);
      assert.equal(listed, 200);
      assert.ok(list.tasks.some((task: { id: string }) => task.id === id));
      const events = await readSse(`${warren.url}/tasks/${id}/events`, undefined, 5_000);
      assert.equal(events.at(-1)?.event, "dead");
    });

    await t.step("AMQP: a payload over WARREN_MAX_BODY ends dead at consume", async () => {
      const id = await raw("echo", JSON.stringify({ big: "x".repeat(6.5 * 2 ** 20) }));
      await refusedAtConsume(id, /over the limit of 6291456 bytes \(WARREN_MAX_BODY\)/);
    });

    await t.step("lists are summaries: a 5 MB task leaves GET /tasks small", async () => {
      const [status, body] = await postTask(warren.url, "echo", { big: "y".repeat(5 * 2 ** 20) });
      assert.equal(status, 202);
      const task = await waitForState(warren.url, body.id, "succeeded", 20_000);
      assert.equal(task.payload.big.length, 5 * 2 ** 20, "the task itself has it all");
      const response = await fetch(`${warren.url}/tasks?limit=1000`);
      const text = await response.text();
      assert.ok(text.length < 100_000, `GET /tasks answered ${text.length} bytes`);
      const listed = JSON.parse(text).tasks.find((t: { id: string }) => t.id === body.id);
      assert.equal(listed.payload, undefined);
      assert.equal(listed.result, undefined);
    });

    await t.step("AMQP: a payload that breaks the handler's schema never runs it", async () => {
      const id = await raw("typed", JSON.stringify({ n: "two" }));
      await refusedAtConsume(id, /\/n must be integer/);
    });

    await t.step("AMQP: headers no date can hold leave reads intact", async () => {
      const id = await raw("echo", "{}", {
        "x-warren-created-at": 1e300,
        "x-warren-attempt": 1e300,
      });
      const task = await waitForState(warren.url, id, "succeeded");
      assert.equal(task.attempts, 1, "an attempt count nobody can reach is ignored");
      assert.equal((await getJson(`${warren.url}/tasks?handler=echo`))[0], 200);
    });

    await t.step("ctx.enqueue: a payload that breaks the target's schema is refused", async () => {
      const [, body] = await postTask(warren.url, "fanout", {
        count: 1,
        to: "typed",
        payload: { n: "two" },
      });
      const task = await waitForState(warren.url, body.id, "dead");
      assert.match(
        task.error.message,
        /ctx.enqueue: the payload does not match the schema of "typed": \/n must be integer/,
      );
      const [, typed] = await getJson(`${warren.url}/tasks?handler=typed&limit=100`);
      assert.equal(typed.tasks.length, 1, "only the raw one above: nothing was enqueued");
      const [, ok] = await postTask(warren.url, "fanout", {
        count: 1,
        to: "typed",
        payload: { n: 2 },
      });
      const parent = await waitForState(warren.url, ok.id, "succeeded");
      const child = await waitForState(warren.url, parent.result.ids[0], "succeeded");
      assert.equal(child.result, 4);
    });
  } finally {
    await ch.close();
    await connection.close();
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
