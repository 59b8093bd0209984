/**
 * Handler discovery: file names become handler names, bad files are refused at start-up with a
 * message naming the file, and nothing but the handlers folder's own modules is loaded.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { discoverHandlers } from "../lib/discover.ts";
import { HandlerError, resolveConfig } from "../lib/handler.ts";

async function folder(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "warren-handlers-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, name, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, name), text);
  }
  return dir;
}

const HANDLER = "export default async (payload) => payload;";

Deno.test("discover: modules become handlers named after their files", async () => {
  const dir = await folder({
    "send-mail.ts": `export const config = { workers: 3, prefetch: 5, timeout: "2m" };\n${HANDLER}`,
    "resize_2.js": HANDLER,
    "README.md": "not a handler",
    "lib/helper.ts": "export const x = 1;",
  });
  const handlers = await discoverHandlers(dir);
  assert.deepEqual(handlers.map((h) => h.name), ["resize_2", "send-mail"]);
  const mail = handlers[1];
  assert.equal(mail.config.workers, 3);
  assert.equal(mail.config.prefetch, 5);
  assert.equal(mail.config.timeoutMs, 120_000);
  assert.equal(mail.file, join(dir, "send-mail.ts"));
  assert.ok(mail.moduleUrl.startsWith("file://"));
  assert.deepEqual(handlers[0].config, {
    workers: 1,
    prefetch: 1,
    timeoutMs: 300_000,
    retries: 3,
    backoff: { minMs: 1000, maxMs: 600_000 },
    schema: undefined,
    subscribe: [],
    callback: undefined,
    files: {},
    idempotencyKey: [],
    retention: {},
    schedule: undefined,
    permissions: { net: [], read: [], write: [], env: [], run: [], sys: [], ffi: [] },
  });
});

Deno.test("discover: a bad file name is refused, naming the file", async () => {
  for (const name of ["SendMail.ts", "send mail.ts", "-dash.ts", "ünï.ts", "a.b.ts"]) {
    const dir = await folder({ [name]: HANDLER });
    await assert.rejects(discoverHandlers(dir), (error: Error) => {
      assert.ok(error instanceof HandlerError);
      assert.ok(error.message.includes(name), error.message);
      assert.match(error.message, /lowercase letters, digits, "-" and "_"/);
      return true;
    });
  }
});

Deno.test("discover: modules that are not handlers are refused", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ "a.ts": "export const x = 1;" }, /default export must be the handler function/],
    [{ "a.ts": "throw new Error('broken at import');" }, /cannot be imported: broken at import/],
    [{ "a.ts": `export const config = { workers: 0 };\n${HANDLER}` }, /config\.workers must be/],
    [
      { "a.ts": `export const config = { worker: 2 };\n${HANDLER}` },
      /unknown config field "worker"/,
    ],
    [{ "a.ts": `export const config = { timeout: "forever" };\n${HANDLER}` }, /config\.timeout/],
    [{ "a.ts": `export const config = { timeout: "2h" };\n${HANDLER}` }, /config\.timeout/],
    [{ "a.ts": `export const config = { schema: { type: "objekt" } };\n${HANDLER}` }, /schema/],
    [{ "a.ts": HANDLER, "a.js": HANDLER }, /already defined by a\.js/],
  ];
  for (const [files, message] of cases) {
    const dir = await folder(files);
    await assert.rejects(discoverHandlers(dir), (error: Error) => {
      assert.ok(error instanceof HandlerError);
      assert.match(error.message, /^handler file /);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("discover: a missing folder is a clear error", async () => {
  await assert.rejects(discoverHandlers("/nonexistent/handlers"), /WARREN_HANDLERS: cannot read/);
});

Deno.test("handler config: backoff bounds are checked", () => {
  assert.throws(
    () => resolveConfig({ backoff: { min: "1m", max: "1s" } }, "x.ts"),
    /backoff.min is greater than config.backoff.max/,
  );
  assert.deepEqual(resolveConfig({ backoff: { min: 10, max: "1s" } }, "x.ts").backoff, {
    minMs: 10,
    maxMs: 1000,
  });
});
