/**
 * Whatever a handler throws ends its task, with an error that fits every place it is written (the
 * dead letter's headers, events, the store), and the worker goes on with the next task.
 */

import assert from "node:assert/strict";
import { connect } from "amqplib";
import { publishConfirmed, PublishError } from "../lib/amqp/publish.ts";
import { bound, cleanStack, describeError, handlerStacks } from "../lib/task_error.ts";
import {
  AMQP_URL,
  deleteTopology,
  getJson,
  postTask,
  startWarren,
  uniquePrefix,
  waitForState,
} from "./helpers/warren.ts";

const utf8 = (text: string) => new TextEncoder().encode(text).byteLength;

Deno.test("task error: bounded, printable, whatever was thrown", () => {
  const big = describeError(new Error("x".repeat(1_000_000)));
  assert.ok(utf8(big.message) <= 4096, `message of ${utf8(big.message)} bytes`);
  assert.equal(bound(big.message, 4096), big.message, "a bounded text stays as it is");
  assert.match(big.message, /^x+… \(truncated from 1000000 bytes\)$/);
  const wide = describeError(new Error("🦀".repeat(50_000)));
  assert.ok(utf8(wide.message) <= 4096);
  assert.ok(!wide.message.includes("\uFFFD"), "no broken character at the cut");
  const named = new Error("m");
  named.name = "N".repeat(10_000);
  assert.ok(utf8(describeError(named).name!) <= 300);

  const objectMessage = new Error();
  (objectMessage as { message: unknown }).message = { code: 42 };
  assert.equal(describeError(objectMessage).message, '{"code":42}');
  const circular = new Error("outer", { cause: new Error("inner") });
  (circular.cause as Error).cause = circular;
  const described = describeError(circular);
  assert.equal(described.message, "outer");
  assert.equal(described.stack!.match(/Caused by: Error: inner/g)?.length, 1);
  assert.deepEqual(describeError({ code: 7 }), { message: '{"code":7}' });
  assert.deepEqual(describeError("plain"), { message: "plain" });
  assert.deepEqual(describeError(undefined), { message: "undefined" });
  const unprintable = describeError(Object.assign(Object.create(null), { big: 1n }));
  assert.equal(typeof unprintable.message, "string");
  const hostile = new Error("hostile");
  Object.defineProperty(hostile, "stack", {
    get() {
      throw new Error("no stack for you");
    },
  });
  assert.equal(describeError(hostile).message, "hostile");
});

Deno.test("publish: a message that cannot be encoded fails for good, and the channel lives on", async () => {
  const connection = await connect(AMQP_URL);
  const queue = uniquePrefix("encode");
  try {
    const ch = await connection.createConfirmChannel();
    await ch.assertQueue(queue, { exclusive: true });
    const body = new TextEncoder().encode("{}");
    const tooBig = { headers: { "x-big": "x".repeat(70_000) } };
    const error = await publishConfirmed(ch, "", queue, body, tooBig, 2_000).catch((e) => e);
    assert.ok(error instanceof PublishError);
    assert.equal(error.permanent, true);
    assert.match(error.message, /exceeds the 65536 byte encoding buffer/);
    await publishConfirmed(ch, "", queue, body, {}, 2_000); // the channel still works
    assert.equal((await ch.checkQueue(queue)).messageCount, 1);
    await ch.close();
  } finally {
    await connection.close();
  }
});

Deno.test("errors: huge, odd and non-Error throws end dead, and the worker goes on", async () => {
  const warren = await startWarren();
  try {
    const cases = [
      "100k",
      "1m",
      "wide",
      "name",
      "object-message",
      "circular-cause",
      "object",
      "null-proto",
      "undefined",
    ];
    for (const what of cases) {
      const [status, body] = await postTask(warren.url, "throws", { what });
      assert.equal(status, 202);
      const task = await waitForState(warren.url, body.id, "dead", 15_000);
      assert.equal(task.attempts, 1, what);
      assert.ok(utf8(task.error.message) <= 4096, `${what}: ${utf8(task.error.message)} bytes`);
      assert.ok(utf8(task.error.name ?? "") <= 256, what);
      assert.ok(utf8(task.error.stack ?? "") <= 4096, what);
      // The next task of the same handler runs: the worker is not wedged.
      const [, ok] = await postTask(warren.url, "throws", { what: "ok" });
      await waitForState(warren.url, ok.id, "succeeded", 5_000);
    }
    const [, list] = await getJson(`${warren.url}/tasks?handler=throws&state=dead&limit=20`);
    assert.equal(list.tasks.length, cases.length);
    const [, dead] = await getJson(`${warren.url}/handlers/throws/dead?limit=20`);
    assert.equal(dead.tasks.length, cases.length, "every one is in the dead letters");
    assert.equal(dead.total, cases.length);
    const big = dead.tasks.find((t: { error: { message: string } }) =>
      t.error.message.startsWith("x")
    );
    const [, task] = await getJson(`${warren.url}${big.links.self}`);
    assert.match(task.error.message, /^x+… \(truncated from 100000 bytes\)$/);
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});

Deno.test("stacks: the handler's frames, relative; no runtime, Deno or server paths", () => {
  const stack = [
    "TypeError: boom",
    "    at fail (file:///srv/app/handlers/fail.ts:7:9)",
    "    at helper (file:///srv/app/handlers/lib/util.ts:3:1)",
    "    at parse (file:///root/.cache/deno/npm/registry.npmjs.org/@scope/pkg/1.2.3/dist/x.js:9:9)",
    "    at run (file:///opt/warren/lib/worker/entry.ts:313:13)",
    "    at processTicksAndRejections (ext:core/01_core.js:405:7)",
    "    at async Promise.all (index 0)",
    "    at file:///etc/secret/place/other.js:1:1",
    "Caused by: Error: inner",
  ].join("\n");
  const clean = cleanStack(stack, {
    hidden: ["file:///opt/warren/lib/"],
    relative: ["file:///srv/app/"],
  });
  assert.equal(
    clean,
    [
      "TypeError: boom",
      "    at fail (handlers/fail.ts:7:9)",
      "    at helper (handlers/lib/util.ts:3:1)",
      "    at parse (npm:@scope/pkg@1.2.3/dist/x.js:9:9)",
      "    at async Promise.all (index 0)",
      "    at other.js:1:1",
      "Caused by: Error: inner",
    ].join("\n"),
  );

  // A handler's own cleaner: its project relative, Warren's runtime gone.
  const lib = new URL("../lib/", import.meta.url).href;
  const ofHandler = handlerStacks("file:///srv/app/handlers/fail.ts")(
    `Error: x\n    at fail (file:///srv/app/handlers/fail.ts:7:9)\n    at run (${lib}worker/executor.ts:9:9)`,
  );
  assert.equal(ofHandler, "Error: x\n    at fail (handlers/fail.ts:7:9)");
});
