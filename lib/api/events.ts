/**
 * Publishing an event (`POST /events/{topic}`): it goes to the broker once, and every handler
 * subscribed to its topic gets a task of it, with an id of its own (see `eventTaskId`), its own
 * retries, dead letters and history. The api records those tasks as queued, as it does a POST to
 * a handler, and answers with their ids.
 *
 * @module
 */

import type { Hono } from "hono";
import type { TaskEvent } from "../events.ts";
import { eventTaskId, newTaskId } from "../id.ts";
import { readPayload } from "../payload.ts";
import { compileSchema, type Validator } from "../schema.ts";
import { subscribersOf, topicProblem } from "../topics.ts";
import type { ApiDeps } from "./deps.ts";
import { payloadLimit, readCallback, recordQueued, refusedPayload, unsupported } from "./intake.ts";
import { problem } from "./problem.ts";
import { taskLinks } from "./task_json.ts";
import { isMultipart } from "./uploads.ts";

/** The 422 for a payload that breaks a subscriber's schema, naming it; undefined when none does. */
function refusedBySubscriber(
  handlers: { name: string; validate?: Validator }[],
  subscribers: string[],
  payload: unknown,
): Response | undefined {
  for (const name of subscribers) {
    const violations = handlers.find((h) => h.name === name)!.validate?.(payload) ?? [];
    if (violations.length === 0) continue;
    return refusedPayload({
      kind: "schema",
      detail: `the payload does not match the schema of subscriber "${name}": ` +
        violations.map((v) => `${v.pointer || "payload"} ${v.message}`).join("; "),
      violations,
    });
  }
  return undefined;
}

/**
 * Registers `POST /events/{topic}`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * declare const deps: import("./deps.ts").ApiDeps;
 * eventRoutes(new Hono(), deps);
 * ```
 */
export function eventRoutes(app: Hono, deps: ApiDeps): void {
  const handlers = deps.handlers.map((h) => ({
    name: h.name,
    subscribe: h.config.subscribe,
    validate: h.config.schema === undefined ? undefined : compileSchema(h.config.schema),
  }));

  app.post("/events/:topic", payloadLimit(deps.maxBodyBytes), async (c) => {
    const topic = c.req.param("topic");
    const wrong = topicProblem(topic);
    if (wrong) {
      return problem({ slug: "bad-topic", title: "Bad topic", status: 400, detail: wrong });
    }
    const callback = readCallback(c.req.header("callback-url"), deps);
    if (callback instanceof Response) return callback;
    if (isMultipart(c.req.header("content-type"))) {
      return unsupported("an event carries no files: send its payload as JSON");
    }
    deps.admit(); // before reading the body: a refusal costs nothing
    const check = readPayload(new Uint8Array(await c.req.arrayBuffer()), {
      maxBytes: deps.maxBodyBytes,
    });
    if (!check.ok) return refusedPayload(check.refusal);
    const payload = check.payload;
    const subscribers = subscribersOf(handlers, topic);
    const refused = refusedBySubscriber(handlers, subscribers, payload);
    if (refused) return refused;

    const event = {
      id: newTaskId(),
      topic,
      payload,
      createdAt: Date.now(),
      recorded: true,
      ...(callback ? { callback } : {}),
    };
    await deps.publish(event);
    deps.metrics.published(topic);
    const tasks = subscribers.map((handler) => ({ handler, id: eventTaskId(event.id, handler) }));
    await recordQueued(
      deps,
      tasks.map(({ handler, id }): TaskEvent => ({
        type: "queued",
        id,
        handler,
        attempt: 0,
        at: event.createdAt,
        payload,
        event: { id: event.id, topic },
      })),
    );
    return c.json({
      id: event.id,
      topic,
      created_at: new Date(event.createdAt).toISOString(),
      tasks: tasks.map((task) => ({ ...task, links: taskLinks(task.id) })),
    }, 202);
  });
}
