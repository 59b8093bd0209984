/**
 * Start-up as a user sees it: one log line per handler and the address; a bad setting or a bad
 * handler file stops start-up with one line that names it, and exit code 2.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  deleteTopology,
  type Json,
  ROOT,
  runWarren,
  startWarren,
  waitForState,
} from "./helpers/warren.ts";

const SHIPPED = [...Deno.readDirSync(join(ROOT, "handlers"))]
  .map((entry) => entry.name.replace(/\.ts$/, ""));

Deno.test("startup: the shipped handlers, one line each, then the address", async () => {
  const warren = await startWarren({ handlersDir: join(ROOT, "handlers") });
  try {
    const output = warren.output();
    assert.match(
      output,
      new RegExp(`handler countdown: queue ${warren.prefix}\\.task\\.countdown, 1 worker`),
    );
    assert.match(
      output,
      new RegExp(`handler hello: queue ${warren.prefix}\\.task\\.hello, 1 worker`),
    );
    assert.match(output, /handler order-inventory: .*; subscribes to order\.\*/);
    assert.match(output, /listening on http:\/\/127\.0\.0\.1:\d+/);

    // Seed 001's order fan-out, as the README shows it.
    const response = await fetch(`${warren.url}/events/order.created`, {
      method: "POST",
      body: JSON.stringify({
        order_id: 42,
        email: "ada@example.com",
        items: ["book"],
        total: 1200,
      }),
    });
    const event = await response.json();
    assert.equal(response.status, 202);
    assert.deepEqual(event.tasks.map((t: Json) => t.handler).sort(), [
      "order-analytics",
      "order-email",
      "order-inventory",
    ]);
    const results = await Promise.all(
      event.tasks.map((t: Json) => waitForState(warren.url, t.id, "succeeded")),
    );
    assert.deepEqual(results.map((t) => t.result).find((r) => r.reserved), {
      reserved: ["book"],
      order_id: 42,
    });

    // The image upload, as the README shows it: a PNG's header says 640×480.
    const png = new Uint8Array(64);
    png.set([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82]);
    new DataView(png.buffer).setUint32(16, 640);
    new DataView(png.buffer).setUint32(20, 480);
    const form = new FormData();
    form.append("label", "cat");
    form.append("image", new File([png], "cat.png", { type: "image/png" }));
    const upload = await fetch(`${warren.url}/tasks/thumbnail`, { method: "POST", body: form });
    assert.equal(upload.status, 202);
    const thumbnail = await waitForState(warren.url, (await upload.json()).id, "succeeded");
    assert.deepEqual(
      [thumbnail.result.label, thumbnail.result.width, thumbnail.result.height],
      ["cat", 640, 480],
    );
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix, SHIPPED);
  }
});

Deno.test("startup: WARREN_LOG_FORMAT=json writes one JSON object per line", async () => {
  const warren = await startWarren({ env: { WARREN_LOG_FORMAT: "json" } });
  try {
    const lines = warren.output().trim().split("\n").map((line) => JSON.parse(line));
    const listening = lines.find((line) => line.message.startsWith("listening on"));
    assert.equal(listening.message, `listening on ${warren.directUrl}`);
    assert.equal(listening.url, warren.directUrl);
    assert.equal(listening.level, "info");
    assert.equal(listening.logger, "warren.runtime");
    assert.ok(!Number.isNaN(Date.parse(listening.time)));
    assert.ok(
      lines.some((line) => line.name === "echo" && line.message.startsWith("handler echo")),
    );
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});

Deno.test("startup: bad settings stop it with one line naming them", async () => {
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ PORT: "eighty" }, [], /^warren: PORT must be a whole number/],
    [{ HOST: "0.0.0.0" }, [], /^warren: HOST=0\.0\.0\.0 is reachable from other machines/],
    [{ AMQP_URL: "amqp://app:hunter22-secret@" }, [], /^warren: AMQP_URL/],
    [{ WARREN_HANDLERS: "/nonexistent" }, [], /^warren: WARREN_HANDLERS: cannot read/],
    [{}, ["--role=boss"], /^warren: --role must be all, api or worker/],
  ];
  for (const [env, args, message] of cases) {
    const { code, output } = await runWarren({
      env: { AMQP_URL: "amqp://app:hunter22-secret@localhost:5672", ...env },
      args,
    });
    assert.equal(code, 2, output);
    assert.match(output.trim(), message);
    assert.equal(output.trim().split("\n").length, 1, output);
    assert.ok(!output.includes("hunter22-secret"), output);
  }
});

Deno.test("startup: a PostgreSQL store that cannot be reached stops it, its password unsaid", async () => {
  // Port 1 refuses at once.
  const { code, output } = await runWarren({
    env: { WARREN_STORE: "postgres://warren:pg-hunter22-secret@127.0.0.1:1/warren" },
    args: ["--role=api"],
  });
  assert.equal(code, 1, output);
  const lines = output.split("\n").filter((line) => line.startsWith("warren: "));
  assert.equal(lines.length, 1, output);
  assert.match(
    lines[0],
    /^warren: WARREN_STORE: cannot open the PostgreSQL store at postgres:\/\/warren:\*\*\*@127\.0\.0\.1:1\/warren: /,
  );
  assert.ok(!output.includes("pg-hunter22-secret"), output);
});

Deno.test("startup: a handler file with a bad name is refused, naming it", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "Resize Image.ts"), "export default () => 1;");
  const { code, output } = await runWarren({ handlersDir: dir });
  assert.equal(code, 2, output);
  assert.match(output, /^warren: handler file .*Resize Image\.ts: a handler name may only hold/m);
  await Deno.remove(dir, { recursive: true });
});
