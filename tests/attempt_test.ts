/**
 * One attempt of a handler: its result as JSON, its failure as a task error, its time limit.
 */

import assert from "node:assert/strict";
import { PermanentError } from "../lib/handler.ts";
import { attempt } from "../lib/worker/attempt.ts";

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
