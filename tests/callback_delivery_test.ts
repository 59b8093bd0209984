/**
 * A callback when the task is done, end to end: a real receiver hears each task's end, signed
 * (verified by the `standardwebhooks` library), tries that fail are retried and recorded in the
 * task's history, a hanging receiver holds up no other, a handler's default applies, bad URLs are
 * refused, and a delivery pending across a restart still arrives.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { Webhook } from "standardwebhooks";
import {
  deleteTopology,
  getJson,
  type Json,
  type Process,
  runWarren,
  startWarren,
  uniquePrefix,
  waitFor,
} from "./helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./fixtures/callbacks", import.meta.url));
const NAMES = ["boom", "hooked", "ok"];
const SECRET = "whsec_" + btoa("a callback secret for the tests!");

/** A receiver of callbacks: what each path got, and how it answers. */
function receiver(port = 0) {
  const got: { path: string; headers: Record<string, string>; body: string }[] = [];
  const tries = new Map<string, number>();
  const release = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    got.push({ path, headers: Object.fromEntries(req.headers), body: await req.text() });
    const n = (tries.get(path) ?? 0) + 1;
    tries.set(path, n);
    if (path === "/hang") await release.promise;
    if (path === "/flaky" && n <= 2) return new Response("not yet", { status: 500 });
    if (path === "/always-500") return new Response("no", { status: 500 });
    return new Response(null, { status: 204 });
  });
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    got,
    async close() {
      release.resolve();
      await server.shutdown();
    },
  };
}

function start(prefix: string, storePath?: string, env: Record<string, string> = {}) {
  return startWarren({
    prefix,
    storePath,
    handlersDir: HANDLERS,
    env: {
      WARREN_WEBHOOK_SECRET: SECRET,
      WARREN_CALLBACK_ALLOW: "127.0.0.1",
      WARREN_CALLBACK_BACKOFF: "1s",
      WARREN_CALLBACK_RETRIES: "2",
      ...env,
    },
  });
}

async function post(url: string, handler: string, callback?: string): Promise<[number, Json]> {
  const response = await fetch(`${url}/tasks/${handler}`, {
    method: "POST",
    headers: callback ? { "callback-url": callback } : {},
    body: JSON.stringify({ n: 1 }),
  });
  return [response.status, await response.json()];
}

/** The task's callback steps, once it has `count` of them. */
function callbackSteps(url: string, id: string, count: number, timeoutMs = 15_000) {
  return waitFor(
    async () => {
      const [, task] = await getJson(`${url}/tasks/${id}`);
      const steps = task.history.filter((h: Json) => h.state === "callback");
      return steps.length >= count ? steps : undefined;
    },
    timeoutMs,
    `${count} callback step(s) of ${id}`,
  );
}

Deno.test("callbacks: each task's end is POSTed, signed, retried, recorded", async (t) => {
  const hooks = receiver();
  const warren = await start(uniquePrefix("callbacks"), undefined, {
    HOOKED_URL: hooks.url("/default"),
  });
  try {
    await t.step("a task that succeeds: its JSON, signed as Standard Webhooks says", async () => {
      const [status, accepted] = await post(warren.url, "ok", hooks.url("/ok"));
      assert.equal(status, 202);
      const [step] = await callbackSteps(warren.url, accepted.id, 1);
      assert.equal(step.error, null, "delivered");
      const call = hooks.got.find((g) => g.path === "/ok")!;
      assert.equal(call.headers["webhook-id"], `${accepted.id}.0`);
      assert.equal(call.headers["content-type"], "application/json");
      const task = new Webhook(SECRET).verify(call.body, call.headers) as Json;
      assert.equal(task.id, accepted.id);
      assert.equal(task.state, "succeeded");
      assert.deepEqual(task.result, { ok: { n: 1 } });
    });

    await t.step("a task that dies: its error", async () => {
      const [, accepted] = await post(warren.url, "boom", hooks.url("/dead"));
      await callbackSteps(warren.url, accepted.id, 1);
      const call = hooks.got.find((g) => g.path === "/dead")!;
      const task = new Webhook(SECRET).verify(call.body, call.headers) as Json;
      assert.equal(task.state, "dead");
      assert.equal(task.error.message, "boom");
    });

    await t.step("failed tries are retried with backoff and written in the history", async () => {
      const [, accepted] = await post(warren.url, "ok", hooks.url("/flaky"));
      const steps = await callbackSteps(warren.url, accepted.id, 3);
      assert.deepEqual(steps.map((s: Json) => s.attempt), [1, 2, 3]);
      assert.match(steps[0].error, /HTTP 500; tried again in 1 s/);
      assert.match(steps[1].error, /HTTP 500; tried again in 2 s/);
      assert.equal(steps[2].error, null);
      const calls = hooks.got.filter((g) => g.path === "/flaky");
      assert.equal(calls.length, 3);
      assert.equal(new Set(calls.map((c) => c.headers["webhook-id"])).size, 1, "one message id");
      for (const call of calls) new Webhook(SECRET).verify(call.body, call.headers);
    });

    await t.step("past WARREN_CALLBACK_RETRIES it gives up, and says so", async () => {
      const [, accepted] = await post(warren.url, "ok", hooks.url("/always-500"));
      const steps = await callbackSteps(warren.url, accepted.id, 3);
      assert.match(steps[2].error, /HTTP 500; not tried again \(try 3\)/);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(hooks.got.filter((g) => g.path === "/always-500").length, 3);
      const metrics = await (await fetch(`${warren.url}/metrics`)).text();
      assert.match(metrics, /warren_callbacks_total\{handler="ok",outcome="failed"\} [4-9]/);
    });

    await t.step("a receiver that hangs holds up no other callback", async () => {
      await post(warren.url, "ok", hooks.url("/hang"));
      await waitFor(() => hooks.got.some((g) => g.path === "/hang"), 10_000, "the hanging call");
      const [, other] = await post(warren.url, "ok", hooks.url("/meanwhile"));
      const [step] = await callbackSteps(warren.url, other.id, 1, 5_000);
      assert.equal(step.error, null);
    });

    await t.step("a handler's default callback, unless the POST names another", async () => {
      const [, plain] = await post(warren.url, "hooked");
      await callbackSteps(warren.url, plain.id, 1);
      const [, named] = await post(warren.url, "hooked", hooks.url("/named"));
      await callbackSteps(warren.url, named.id, 1);
      const ids = (path: string) =>
        hooks.got.filter((g) => g.path === path).map((g) => JSON.parse(g.body).id);
      assert.deepEqual(ids("/default"), [plain.id]);
      assert.deepEqual(ids("/named"), [named.id]);
    });

    await t.step("a URL that cannot be used is 400, and nothing is enqueued", async () => {
      const [, before] = await getJson(`${warren.url}/tasks?handler=ok&limit=1000`);
      for (
        const [url, why] of [
          ["ftp://example.com/x", /http: or https:/],
          ["http://10.0.0.1/hook", /private or special address.*WARREN_CALLBACK_ALLOW/],
          ["http://169.254.169.254/latest", /private or special address/],
          ["not a url", /not an absolute URL/],
        ] as const
      ) {
        const [status, problem] = await post(warren.url, "ok", url);
        assert.equal(status, 400, url);
        assert.match(problem.detail, why);
      }
      const [, after] = await getJson(`${warren.url}/tasks?handler=ok&limit=1000`);
      assert.equal(after.tasks.length, before.tasks.length);
    });
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await hooks.close();
    await deleteTopology(warren.prefix, NAMES);
  }
});

Deno.test("callbacks: without WARREN_WEBHOOK_SECRET a Callback-Url is refused", async () => {
  const warren = await startWarren({ handlersDir: HANDLERS });
  try {
    const [status, problem] = await post(warren.url, "ok", "https://example.com/hook");
    assert.equal(status, 400);
    assert.match(problem.detail, /set WARREN_WEBHOOK_SECRET/);
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix, NAMES);
  }
});

Deno.test("callbacks: settings that cannot work stop start-up with one line", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { HOOKED_URL: "https://example.com/hook" },
      /hooked: config.callback needs WARREN_WEBHOOK_SECRET/,
    ],
    [{ HOOKED_URL: "ftp://example.com/hook" }, /config.callback must be an http: or https: URL/],
    [
      { HOOKED_URL: "http://10.9.8.7/hook", WARREN_WEBHOOK_SECRET: SECRET },
      /hooked: config.callback: .*private or special address/,
    ],
    [{ WARREN_WEBHOOK_SECRET: "hunter2" }, /WARREN_WEBHOOK_SECRET must be a Standard Webhooks/],
    [{ WARREN_CALLBACK_ALLOW: "10.0.0.0/99" }, /WARREN_CALLBACK_ALLOW: "10.0.0.0\/99"/],
  ];
  for (const [env, message] of cases) {
    const { code, output } = await runWarren({ handlersDir: HANDLERS, env });
    assert.equal(code, 2, output);
    assert.match(output, message);
    assert.ok(!output.includes("hunter2"), "the secret is not printed");
  }
});

Deno.test("callbacks: a delivery pending across a restart still arrives", async () => {
  // A port with nothing on it, for now.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const prefix = uniquePrefix("callbacks-restart");
  const storePath = `${await Deno.makeTempDir()}/warren.db`;
  let warren: Process = await start(prefix, storePath, { WARREN_CALLBACK_BACKOFF: "2s" });
  let hooks: ReturnType<typeof receiver> | undefined;
  try {
    const [, accepted] = await post(warren.url, "ok", `http://127.0.0.1:${port}/later`);
    const [first] = await callbackSteps(warren.url, accepted.id, 1);
    assert.match(first.error, /cannot connect/);
    assert.ok(!first.error.includes("/later"), "the URL's path stays out of the history");
    assert.equal(await warren.stop(), 0, warren.output());
    hooks = receiver(port);
    warren = await start(prefix, storePath, { WARREN_CALLBACK_BACKOFF: "2s" });
    await waitFor(() => hooks!.got.some((g) => g.path === "/later"), 20_000, "the delivery");
    const steps = await callbackSteps(warren.url, accepted.id, 2);
    assert.equal(steps.at(-1).error, null);
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await hooks?.close();
    await deleteTopology(prefix, NAMES);
  }
});
