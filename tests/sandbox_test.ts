/**
 * Each handler's sandbox: its Web Workers get what its config declares and the broker, nothing
 * more. A handler that reads a file, the broker's URL, a host or a program it did not declare
 * ends `dead` at its first attempt with the config key to add, its worker serves the next task,
 * and the handler that declares them succeeds. /handlers and the OpenAPI document show them.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { resolveConfig } from "../lib/handler.ts";
import { deniedAdvice, readPermissions, workerPermissions } from "../lib/permissions.ts";
import { ALLOWED_PORT } from "./fixtures/sandbox/allowed.ts";
import {
  deleteTopology,
  getJson,
  type Json,
  postTask,
  startWarren,
  waitForState,
} from "./helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./fixtures/sandbox", import.meta.url));
const NAMES = ["allowed", "call", "eavesdrop", "peek", "secret", "spawn"];

Deno.test("permissions: declared in Deno's words, checked at start-up with one line", () => {
  const permissions = readPermissions(
    {
      net: ["api.example.com", "127.0.0.1:9000", "[::1]:80"],
      read: ["./uploads", "/srv/x"],
      env: ["KEY", "AWS_*"],
    },
    "h.ts: config.permissions",
    "/app",
  );
  assert.deepEqual(permissions.read, ["/app/uploads", "/srv/x"], "relative to the project");
  assert.deepEqual(permissions.run, [], "nothing not declared");
  const worker = workerPermissions(permissions, ["localhost:5672", "rabbit-2:5672"]);
  assert.deepEqual(worker.net, [
    "localhost:5672",
    "rabbit-2:5672",
    "api.example.com",
    "127.0.0.1:9000",
    "[::1]:80",
  ]);
  assert.equal(worker.run, false);
  assert.equal(worker.import, false);
  assert.deepEqual(workerPermissions(readPermissions({}, "p", "/app"), ["h:5672"]), {
    net: ["h:5672"],
    read: false,
    write: false,
    env: false,
    run: false,
    sys: false,
    ffi: false,
    import: false,
  }, "secure by default: the broker only");
  const refused = (permissions: unknown, pattern: RegExp) =>
    assert.throws(() => resolveConfig({ permissions }, "handlers/pay.ts"), pattern);
  refused(
    { net: ["https://api.example.com/x"] },
    /^HandlerError: handlers\/pay\.ts: config\.permissions\.net: "https:\/\/api\.example\.com\/x" is not a host/,
  );
  refused(
    { env: ["NOT-A-NAME"] },
    /config\.permissions\.env: "NOT-A-NAME" is not an environment variable's name/,
  );
  refused({ sys: ["everything"] }, /config\.permissions\.sys: "everything" is not one of hostname/);
  refused({ read: "./uploads" }, /config\.permissions\.read must be a list of non-empty strings/);
  refused(
    { disk: ["/"] },
    /config\.permissions: unknown key disk \(known: net, read, write, env, run, sys, ffi\)/,
  );
  assert.equal(
    deniedAdvice(
      'Requires env access to "AMQP_URL", run again with the --allow-env flag',
      "secret.ts",
    ),
    'the handler may not read the environment variable "AMQP_URL": add "AMQP_URL" to config.permissions.env in secret.ts',
  );
});

Deno.test("sandbox: what a handler did not declare is denied, with the key to add", async (t) => {
  const loopback = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("undeclared"),
  );
  const allowedHost = Deno.serve(
    { hostname: "127.0.0.1", port: ALLOWED_PORT, onListen: () => {} },
    () => new Response("declared"),
  );
  const warren = await startWarren({ handlersDir: HANDLERS, env: { SANDBOX_SECRET: "s3cret" } });
  try {
    const dies = async (handler: string, payload: unknown, pattern: RegExp) => {
      const [, accepted] = await postTask(warren.url, handler, payload);
      const task = await waitForState(warren.url, accepted.id, "dead");
      assert.equal(task.attempts, 1, `${handler}: not retried, it would fail the same way`);
      assert.equal(task.error.name, "NotCapable");
      assert.match(task.error.message, pattern);
      return task;
    };

    await t.step("reading a file it did not declare", async () => {
      await dies(
        "peek",
        { path: "/etc/hostname" },
        /^the handler may not read "\/etc\/hostname": add "\/etc\/hostname" to config\.permissions\.read in peek\.ts$/,
      );
      const [, next] = await postTask(warren.url, "peek", {});
      const done = await waitForState(warren.url, next.id, "succeeded");
      assert.equal(done.result, "nothing read", "its worker serves the next task");
    });

    await t.step("reading the broker's URL from the environment", async () => {
      const task = await dies(
        "secret",
        {},
        /may not read the environment variable "AMQP_URL": add "AMQP_URL" to config\.permissions\.env in secret\.ts/,
      );
      assert.doesNotMatch(
        JSON.stringify(task),
        /guest:guest/,
        "no credential anywhere in the task",
      );
    });

    await t.step("listening to its worker's messages hears nothing", async () => {
      const [, accepted] = await postTask(warren.url, "eavesdrop", {});
      const task = await waitForState(warren.url, accepted.id, "succeeded");
      assert.deepEqual(task.result, { heard: [], global: [] }, "no message, no broker URL");
    });

    await t.step("fetching a loopback server it did not declare", async () => {
      await dies(
        "call",
        { url: `http://127.0.0.1:${loopback.addr.port}/` },
        new RegExp(
          `may not reach "127\\.0\\.0\\.1:${loopback.addr.port}": add .* to config\\.permissions\\.net in call\\.ts`,
        ),
      );
    });

    await t.step("spawning a process", async () => {
      await dies(
        "spawn",
        {},
        /may not run "true": add "true" to config\.permissions\.run in spawn\.ts/,
      );
    });

    await t.step("the same, declared, succeeds", async () => {
      const [, accepted] = await postTask(warren.url, "allowed", {});
      const task = await waitForState(warren.url, accepted.id, "succeeded");
      assert.deepEqual(task.result, {
        file: "declared and readable",
        secret: "s3cret",
        fetched: "declared",
        code: 0,
      });
    });

    await t.step("GET /handlers and the OpenAPI document show each sandbox", async () => {
      const [, body] = await getJson(`${warren.url}/handlers`);
      const byName = new Map(body.handlers.map((h: Json) => [h.name, h.config.permissions]));
      assert.deepEqual(byName.get("allowed"), {
        net: [`127.0.0.1:${ALLOWED_PORT}`],
        read: ["./tests/fixtures/sandbox/allowed.txt"],
        write: [],
        env: ["SANDBOX_SECRET"],
        run: ["true"],
        sys: [],
        ffi: [],
      });
      assert.deepEqual(byName.get("peek"), {
        net: [],
        read: [],
        write: [],
        env: [],
        run: [],
        sys: [],
        ffi: [],
      });
      const [, doc] = await getJson(`${warren.url}/openapi.json`);
      assert.match(
        doc.paths["/tasks/peek"].post.description,
        /Its sandbox: nothing but the broker\./,
      );
      assert.match(doc.paths["/tasks/allowed"].post.description, /env: `SANDBOX_SECRET`/);
    });
  } finally {
    await warren.stop();
    await loopback.shutdown();
    await allowedHost.shutdown();
    await deleteTopology(warren.prefix, NAMES);
  }
});
