/**
 * The HTTP API end to end: a real Warren process, a real broker, real Web Workers.
 */

import assert from "node:assert/strict";
import {
  deleteTopology,
  getJson,
  postTask,
  readSse,
  ROOT,
  startWarren,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

Deno.test("api: enqueue, run, observe and refuse through HTTP", async (t) => {
  const warren = await startWarren({ env: { WARREN_MAX_BODY: "4KiB" } });
  try {
    await t.step("POST answers 202 with the id, Location and links", async () => {
      const [status, body, headers] = await postTask(warren.url, "echo", { hello: "world" });
      assert.equal(status, 202);
      assert.match(body.id, /^[0-9a-f-]{36}$/);
      assert.equal(body.handler, "echo");
      assert.equal(body.state, "queued");
      assert.ok(!Number.isNaN(Date.parse(body.created_at)));
      assert.deepEqual(body.links, {
        self: `/tasks/${body.id}`,
        events: `/tasks/${body.id}/events`,
      });
      assert.equal(headers.get("location"), `/tasks/${body.id}`);

      const task = await waitForState(warren.url, body.id, "succeeded");
      assert.deepEqual(task.result, { echo: { hello: "world" } });
      assert.deepEqual(task.payload, { hello: "world" });
      assert.equal(task.attempts, 1);
      assert.equal(task.error, null);
      for (const field of ["created_at", "started_at", "finished_at"]) {
        assert.ok(!Number.isNaN(Date.parse(task[field])), `${field} is a date`);
      }
      assert.ok(Date.parse(task.started_at) <= Date.parse(task.finished_at));
    });

    await t.step("a body sent as a form (curl -d) is still read as JSON", async () => {
      const [status, body] = await postTask(warren.url, "echo", '{"form":true}', {
        "content-type": "application/x-www-form-urlencoded",
      });
      assert.equal(status, 202);
      const task = await waitForState(warren.url, body.id, "succeeded");
      assert.deepEqual(task.result, { echo: { form: true } });
    });

    await t.step("an empty body is the payload {}", async () => {
      const [status, body] = await postTask(warren.url, "echo", "");
      assert.equal(status, 202);
      const task = await waitForState(warren.url, body.id, "succeeded");
      assert.deepEqual(task.result, { echo: {} });
    });

    await t.step("SSE streams each state change and progress, then closes", async () => {
      const [, body] = await postTask(warren.url, "steps", { steps: 3, ms: 300 });
      const events = await readSse(`${warren.url}${body.links.events}`);
      const names = events.map((e) => e.event);
      assert.equal(names.at(-1), "succeeded");
      assert.deepEqual(names.filter((n) => n === "progress").length, 3, names.join(","));
      assert.ok(names.indexOf("running") < names.indexOf("progress"), names.join(","));
      const progress = events.filter((e) => e.event === "progress").map((e) =>
        JSON.parse(e.data).progress
      );
      assert.deepEqual(progress, [{ step: 1, of: 3 }, { step: 2, of: 3 }, { step: 3, of: 3 }]);
      const last = JSON.parse(events.at(-1)!.data);
      assert.equal(last.state, "succeeded");
      assert.deepEqual(last.result, { steps: 3 });
    });

    await t.step("SSE after the end gives the final state at once", async () => {
      const [, body] = await postTask(warren.url, "echo", { late: true });
      await waitForState(warren.url, body.id, "succeeded");
      const events = await readSse(`${warren.url}${body.links.events}`, undefined, 5_000);
      assert.equal(events.length, 1);
      assert.equal(events[0].event, "succeeded");
      assert.deepEqual(JSON.parse(events[0].data).result, { echo: { late: true } });
    });

    await t.step("a handler that throws ends dead with its error", async () => {
      const [status, body] = await postTask(warren.url, "fail", { message: "no luck" });
      assert.equal(status, 202);
      const task = await waitForState(warren.url, body.id, "dead");
      assert.equal(task.error.message, "no luck");
      assert.equal(task.error.name, "TypeError");
      assert.equal(
        task.error.stack.split("\n").slice(0, 2).join("\n"),
        "TypeError: no luck\n    at fail (handlers/fail.ts:7:9)",
        "the handler's frame, relative to its project",
      );
      assert.ok(!task.error.stack.includes("file://"), `no server path: ${task.error.stack}`);
      assert.ok(!/lib\/worker|ext:core/.test(task.error.stack), "no runtime frames");
      assert.equal(task.result, null);
    });

    await t.step("an attempt past its timeout ends dead, and ctx.signal aborted", async () => {
      const [, body] = await postTask(warren.url, "slow", {});
      const task = await waitForState(warren.url, body.id, "dead");
      assert.match(task.error.message, /timed out after 300 ms/);
      const took = Date.parse(task.finished_at) - Date.parse(task.started_at);
      assert.ok(took >= 250 && took < 3000, `took ${took} ms`);
    });

    await t.step("ctx.enqueue starts other tasks, recorded with their payload", async () => {
      const [, body] = await postTask(warren.url, "fanout", { count: 3 });
      const parent = await waitForState(warren.url, body.id, "succeeded");
      assert.equal(parent.result.ids.length, 3);
      for (const [i, id] of parent.result.ids.entries()) {
        const child = await waitForState(warren.url, id, "succeeded");
        assert.deepEqual(child.payload, { parent: body.id, i });
        assert.deepEqual(child.result, { echo: { parent: body.id, i } });
      }
      const [, bad] = await postTask(warren.url, "fanout", { count: 1, to: "nope" });
      const failed = await waitForState(warren.url, bad.id, "dead");
      assert.match(failed.error.message, /ctx.enqueue: unknown handler "nope"/);
    });

    await t.step(
      "GET /tasks lists newest first and filters by handler, state and limit",
      async () => {
        const [, all] = await getJson(`${warren.url}/tasks?limit=100`);
        assert.ok(all.tasks.length >= 6);
        const [, dead] = await getJson(`${warren.url}/tasks?state=dead`);
        assert.ok(dead.tasks.length >= 1);
        assert.ok(dead.tasks.every((task: { state: string }) => task.state === "dead"));
        const [, echo] = await getJson(`${warren.url}/tasks?handler=echo&limit=2`);
        assert.equal(echo.tasks.length, 2);
        assert.ok(echo.tasks.every((task: { handler: string }) => task.handler === "echo"));
        const times = all.tasks.map((task: { created_at: string }) => Date.parse(task.created_at));
        assert.deepEqual(times, [...times].sort((a, b) => b - a), "newest first");
        const [badState, problem] = await getJson(`${warren.url}/tasks?state=sleeping`);
        assert.equal(badState, 400);
        assert.match(problem.detail, /state must be one of/);
        const [badLimit] = await getJson(`${warren.url}/tasks?limit=0`);
        assert.equal(badLimit, 400);
        const [badCursor, cursorProblem] = await getJson(`${warren.url}/tasks?cursor=nope`);
        assert.equal(badCursor, 400);
        assert.match(cursorProblem.detail, /cursor must be a next_cursor of an earlier page/);

        // Page through everything two at a time: each task once, in the same order.
        const paged: string[] = [];
        let next = `/tasks?limit=2`;
        while (next) {
          const response = await fetch(`${warren.url}${next}`);
          const page = await response.json();
          paged.push(...page.tasks.map((task: { id: string }) => task.id));
          const link = response.headers.get("link");
          assert.equal(link === null, page.next_cursor === null, "a Link header with a next page");
          next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : "";
        }
        assert.deepEqual(paged, all.tasks.map((task: { id: string }) => task.id));
      },
    );

    await t.step("GET /handlers shows config, queue depth, consumers and workers", async () => {
      const response = await fetch(`${warren.url}/handlers`);
      const text = await response.text();
      assert.ok(!text.includes(ROOT), "no server path in the answer");
      const [status, body] = [response.status, JSON.parse(text)];
      assert.equal(status, 200);
      const echo = body.handlers.find((h: { name: string }) => h.name === "echo");
      assert.equal(echo.file, "echo.ts", "relative to the handlers folder");
      const cpu = body.handlers.find((h: { name: string }) => h.name === "cpu");
      assert.equal(cpu.config.workers, 2);
      assert.equal(cpu.queue.consumers, 2);
      assert.equal(cpu.queue.messages, 0);
      assert.deepEqual(cpu.workers, {
        running: 2,
        consuming: 2,
        restarts: 0,
        crash_looping: false,
        last_error: null,
      });
      const typed = body.handlers.find((h: { name: string }) => h.name === "typed");
      assert.deepEqual(typed.config.schema.required, ["n"]);
    });

    await t.step("GET /healthz and /readyz answer 200", async () => {
      assert.deepEqual(await getJson(`${warren.url}/healthz`), [200, { status: "ok" }]);
      assert.deepEqual(await getJson(`${warren.url}/readyz`), [200, { status: "ready" }]);
    });

    await t.step("errors are problem+json: 400, 404, 413, 422", async () => {
      const cases: [string, string, string, number, RegExp][] = [
        ["POST", "/tasks/echo", "{not json", 400, /not valid JSON/],
        ["POST", "/tasks/nope", "{}", 404, /no handler named "nope"; known handlers: .*echo/],
        ["POST", "/tasks/echo", JSON.stringify({ big: "x".repeat(5000) }), 413, /4096 bytes/],
        ["POST", "/tasks/typed", JSON.stringify({ n: "two" }), 422, /\/n must be integer/],
        ["POST", "/tasks/typed", "{}", 422, /must have required property 'n'/],
        ["GET", "/tasks/00000000-0000-0000-0000-000000000000", "", 404, /no task with id/],
        ["GET", "/tasks/00000000-0000-0000-0000-000000000000/events", "", 404, /no task/],
        ["GET", "/nowhere", "", 404, /no route GET \/nowhere/],
      ];
      for (const [method, path, body, expected, detail] of cases) {
        const response = await fetch(`${warren.url}${path}`, {
          method,
          body: method === "POST" ? body : undefined,
        });
        assert.equal(response.status, expected, `${method} ${path}`);
        assert.equal(response.headers.get("content-type"), "application/problem+json");
        const problem = await response.json();
        assert.equal(problem.status, expected);
        assert.match(problem.type, /^urn:warren:problem:/);
        assert.equal(typeof problem.title, "string");
        assert.match(problem.detail, detail, `${method} ${path}: ${problem.detail}`);
      }
      const [, invalid] = await postTask(warren.url, "typed", { n: 0 });
      assert.deepEqual(invalid.errors, [{ pointer: "/n", message: "must be >= 1" }]);
    });

    await t.step("a refused task is never enqueued", async () => {
      const [, before] = await getJson(`${warren.url}/tasks?handler=typed`);
      await postTask(warren.url, "typed", { n: "bad" });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const [, after] = await getJson(`${warren.url}/tasks?handler=typed`);
      assert.equal(after.tasks.length, before.tasks.length);
      const [, handlers] = await getJson(`${warren.url}/handlers`);
      const typed = handlers.handlers.find((h: { name: string }) => h.name === "typed");
      assert.equal(typed.queue.messages, 0);
    });

    await t.step("many concurrent tasks all succeed exactly once", async () => {
      const posts = await Promise.all(
        Array.from({ length: 200 }, (_, i) => postTask(warren.url, "echo", { i })),
      );
      assert.ok(posts.every(([status]) => status === 202));
      await waitFor(
        async () => {
          const [, body] = await getJson(
            `${warren.url}/tasks?handler=echo&state=succeeded&limit=1000`,
          );
          return body.tasks.length >= 200 + 4;
        },
        30_000,
        "200 echo tasks to succeed",
      );
      for (const [, body] of posts) {
        const [, task] = await getJson(`${warren.url}/tasks/${body.id}`);
        assert.equal(task.state, "succeeded");
        assert.equal(task.attempts, 1);
        assert.deepEqual(
          task.history.map((h: { state: string }) => h.state),
          ["queued", "running", "succeeded"],
          "one run",
        );
      }
    });
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
