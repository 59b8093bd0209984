/**
 * Task routes: enqueue (POST /tasks/{handler}), read (GET /tasks/{id}), watch
 * (GET /tasks/{id}/events, Server-Sent Events) and list (GET /tasks).
 *
 * @module
 */

import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { parseDuration } from "../duration.ts";
import { TASK_STATES, type TaskEvent, type TaskState } from "../events.ts";
import { newTaskId } from "../id.ts";
import { errorMessage, logger } from "../log.ts";
import { type PayloadRefusal, readPayload } from "../payload.ts";
import { compileSchema, type Validator } from "../schema.ts";
import type { ApiDeps } from "./deps.ts";
import { pageOf, readPage } from "./page.ts";
import { problem } from "./problem.ts";
import { summaryJson, taskJson, taskLinks } from "./task_json.ts";
import { watchTask } from "./watch.ts";

/** The longest delay a POST may ask for. */
const MAX_POST_DELAY_SECONDS = 30 * 86_400;

/** Registers the task routes. */
export function taskRoutes(app: Hono, deps: ApiDeps): void {
  const log = logger("api");
  const handlers = new Map(deps.handlers.map((h) => [h.name, h]));
  const validators = new Map<string, Validator>();
  for (const h of deps.handlers) {
    if (h.config.schema !== undefined) validators.set(h.name, compileSchema(h.config.schema));
  }

  app.post(
    "/tasks/:handler",
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: () =>
        problem({
          slug: "payload-too-large",
          title: "Payload too large",
          status: 413,
          detail: `the body is over the limit of ${deps.maxBodyBytes} bytes (WARREN_MAX_BODY)`,
        }),
    }),
    async (c) => {
      const name = c.req.param("handler");
      const handler = handlers.get(name);
      if (!handler) return unknownHandler(name, [...handlers.keys()]);
      const delay = parseDelay(c.req.query("delay"));
      if (typeof delay === "string") return badQuery(delay);
      deps.admit(); // before reading the body: a refusal costs nothing

      const check = readPayload(new Uint8Array(await c.req.arrayBuffer()), {
        maxBytes: deps.maxBodyBytes,
        validate: validators.get(name),
      });
      if (!check.ok) return refusedPayload(check.refusal);
      const payload = check.payload;

      const task = { id: newTaskId(), handler: name, payload, createdAt: Date.now() };
      const runAt = delay > 0 ? task.createdAt + delay * 1000 : undefined;
      await deps.enqueue(task, { delaySeconds: delay });
      const queued: TaskEvent = {
        type: "queued",
        id: task.id,
        handler: name,
        attempt: 0,
        at: task.createdAt,
        payload,
        runAt,
      };
      await deps.writer.write([queued]).catch(async (error) => {
        // The task is safe in the broker. Its queued event (with the payload, which no later
        // event carries) goes by the events queue, for the recorder to write once it can.
        log.warn("cannot store queued task {id} now ({error}); it is recorded later", {
          id: task.id,
          error: errorMessage(error),
        });
        await deps.recordLater([queued]).catch((later) =>
          log.error("cannot record queued task {id}: {error}", {
            id: task.id,
            error: errorMessage(later),
          })
        );
      });
      const links = taskLinks(task.id);
      c.header("location", links.self);
      return c.json({
        id: task.id,
        handler: name,
        state: "queued",
        created_at: new Date(task.createdAt).toISOString(),
        run_at: runAt === undefined ? null : new Date(runAt).toISOString(),
        links,
      }, 202);
    },
  );

  app.get("/tasks", async (c) => {
    const handler = c.req.query("handler") || undefined;
    const state = c.req.query("state") || undefined;
    const page = readPage(c);
    if (typeof page === "string") return badQuery(page);
    if (state !== undefined && !TASK_STATES.includes(state as TaskState)) {
      return badQuery(`state must be one of ${TASK_STATES.join(", ")} (got "${state}")`);
    }
    const { tasks, next } = await deps.store.list({
      handler,
      state: state as TaskState,
      ...page,
    });
    return c.json({ tasks: tasks.map(summaryJson), ...pageOf(c, next) });
  });

  app.get("/tasks/:id", async (c) => {
    const task = await deps.store.get(c.req.param("id"));
    return task ? c.json(taskJson(task)) : unknownTask(c.req.param("id"));
  });

  app.get("/tasks/:id/events", async (c) => {
    const task = await deps.store.get(c.req.param("id"));
    return task ? watchTask(c, task, deps) : unknownTask(c.req.param("id"));
  });
}

/** A 404 naming the handlers there are. */
export function unknownHandler(name: string, known: string[]): Response {
  return problem({
    slug: "unknown-handler",
    title: "Unknown handler",
    status: 404,
    detail: `no handler named "${name}"; known handlers: ${known.join(", ") || "(none)"}`,
  });
}

function unknownTask(id: string): Response {
  return problem({
    slug: "unknown-task",
    title: "Unknown task",
    status: 404,
    detail: `no task with id "${id}"`,
  });
}

/**
 * Reads `?delay=`: seconds (`90`) or a duration (`90s`, `1h30m`), rounded up to whole seconds
 * (a task never runs early). Returns 0 when absent, or what is wrong as a string.
 */
function parseDelay(text: string | undefined): number | string {
  if (text === undefined || text === "") return 0;
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || ms > MAX_POST_DELAY_SECONDS * 1000) {
    return `delay must be seconds (90) or a duration (90s, 2h, 7d) of at most 30 days ` +
      `(got "${text}")`;
  }
  return Math.ceil(ms / 1000);
}

/** The answer to a payload that breaks a rule: 400, 413 or 422. */
function refusedPayload(refusal: PayloadRefusal): Response {
  switch (refusal.kind) {
    case "too-large":
      return problem({
        slug: "payload-too-large",
        title: "Payload too large",
        status: 413,
        detail: refusal.detail,
      });
    case "not-json":
      return problem({
        slug: "malformed-json",
        title: "Malformed JSON",
        status: 400,
        detail: refusal.detail,
      });
    case "too-deep":
      return problem({
        slug: "too-deep",
        title: "JSON nested too deeply",
        status: 400,
        detail: refusal.detail,
      });
    case "schema":
      return problem({
        slug: "invalid-payload",
        title: "Payload does not match the handler's schema",
        status: 422,
        detail: refusal.detail,
        errors: refusal.violations,
      });
  }
}

/** A 400 for a query parameter that cannot be used. */
export function badQuery(detail: string): Response {
  return problem({ slug: "bad-query", title: "Bad query parameter", status: 400, detail });
}
