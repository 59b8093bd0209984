/**
 * One attempt of a handler: its result as JSON, its failure as a task error, its time limit.
 */

import assert from "node:assert/strict";
import { PermanentError } from "../lib/handler.ts";
import { attempt } from "../lib/worker/attempt.ts";
import { readDelivery } from "../lib/worker/delivery.ts";
import type { Message } from "amqplib";

Deno.test("attempt: a result is copied as JSON; undefined is null", async () => {
  const signal = new AbortController().signal;
  assert.deepEqual(await attempt(() => ({ a: new Date(0) }), signal), {
    ok: true,
    result: { a: "1970-01-01T00:00:00.000Z" },
  });
  assert.deepEqual(await attempt(() => undefined, signal), { ok: true, result: null });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const bad = await attempt(() => cyclic, signal);
  assert.equal(bad.ok, false, "a result that is not JSON fails the attempt");
});

Deno.test("attempt: a throw is a task error; PermanentError says do not retry", async () => {
  const signal = new AbortController().signal;
  const failed = await attempt(() => Promise.reject(new TypeError("nope")), signal);
  assert.ok(!failed.ok);
  assert.equal(failed.error.name, "TypeError");
  assert.equal(failed.error.message, "nope");
  assert.equal(failed.permanent, false);
  const permanent = await attempt(() => {
    throw new PermanentError("never");
  }, signal);
  assert.ok(!permanent.ok && permanent.permanent);
  const thrownString = await attempt(() => {
    throw "plain";
  }, signal);
  assert.ok(!thrownString.ok);
  assert.deepEqual(thrownString.error, { message: "plain" });
});

Deno.test("attempt: the deadline fails it while the handler goes on; onReturned hears the end", async () => {
  const controller = new AbortController();
  let returned = false;
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const pending = attempt(() => release, controller.signal, () => returned = true);
  controller.abort(new Error("timed out after 10 ms"));
  const outcome = await pending;
  assert.ok(!outcome.ok);
  assert.equal(outcome.error.message, "timed out after 10 ms");
  assert.equal(returned, false, "the handler has not returned yet");
  resolve();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(returned, true);
});

Deno.test("delivery: headers give attempt, replay, creation time and redeliveries", () => {
  const message = (headers: Record<string, unknown>, messageId?: string) =>
    ({
      content: new Uint8Array(),
      fields: {},
      properties: { headers, messageId, timestamp: 1_700_000_000 },
    }) as unknown as Message;
  const facts = readDelivery(message({
    "x-warren-attempt": 3,
    "x-warren-replay": 1,
    "x-warren-created-at": 1_700_000_000_123,
    "x-delivery-count": 2,
  }, "t-1"));
  assert.deepEqual(facts, {
    id: "t-1",
    attempt: 3,
    replay: 1,
    createdAt: 1_700_000_000_123,
    fromWarren: true,
    deliveries: 2,
    key: "t-1/1/3",
  });
  const foreign = readDelivery(message({}));
  assert.match(foreign.id, /^[0-9a-f-]{36}$/, "an id is made for a message without one");
  assert.equal(foreign.attempt, 1);
  assert.equal(foreign.createdAt, 1_700_000_000_000, "from the AMQP timestamp");
  assert.equal(foreign.fromWarren, false);
});
