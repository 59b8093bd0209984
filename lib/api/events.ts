/**
 * Publishing an event (`POST /events/{topic}`): it goes to the broker once, and every handler
 * subscribed to its topic gets a task of it, with an id of its own (see `eventTaskId`), its own
 * retries, dead letters and history. The api records those tasks as queued, as it does a POST to
 * a handler, and answers with their ids.
 *
 * @module
 */

import { taskTraceparent } from "../trace.ts";
import type { Hono } from "hono";
import type { TaskEvent } from "../events.ts";
import { eventTaskId, newTaskId } from "../id.ts";
import { readPayload } from "../payload.ts";
import { compileSchema, describeViolations, type Validator } from "../schema.ts";
import { subscribersOf, topicProblem } from "../topics.ts";
import type { ApiDeps } from "./deps.ts";
import {
  payloadLimit,
  queuedEvent,
  readCallback,
  recordQueued,
  refusedPayload,
  unsupported,
} from "./intake.ts";
import { fingerprint } from "../idempotency.ts";
import { readKey, REPLAYED_HEADER, underKey } from "./idempotency.ts";
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
        describeViolations(violations),
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
    const key = readKey(c.req.header("idempotency-key"));
    if (key instanceof Response) return key;
    if (isMultipart(c.req.header("content-type"))) {
      return unsupported("an event carries no files: send its payload as JSON");
    }
    deps.admit(); // before reading the body: a refusal costs nothing
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const check = readPayload(bytes, { maxBytes: deps.maxBodyBytes });
    if (!check.ok) return refusedPayload(check.refusal);
    const subscribers = subscribersOf(handlers, topic);
    const refused = refusedBySubscriber(handlers, subscribers, check.payload);
    if (refused) return refused;

    const outcome = await underKey(deps, {
      scope: `event:${topic}`,
      key,
      fingerprint: () => fingerprint([topic, callback ?? null], JSON.stringify(check.payload)),
      taskId: newTaskId(),
    }, (id) => {
      const traceparent = taskTraceparent(c.req.header("traceparent"));
      return publish(
        deps,
        { id, topic, payload: check.payload, callback, traceparent },
        subscribers,
      );
    });
    if (outcome instanceof Response) return outcome;
    if (outcome.kind === "replayed") c.header(REPLAYED_HEADER, "true");
    return c.body(outcome.answer, 202, { "content-type": "application/json" });
  });
}

/**
 * Publishes an event and records the task of each subscriber as queued; resolves with the 202's
 * body.
 */
async function publish(
  deps: ApiDeps,
  request: {
    id: string;
    topic: string;
    payload: unknown;
    callback: string | undefined;
    traceparent: string;
  },
  subscribers: string[],
): Promise<string> {
  const { id, topic, payload, callback, traceparent } = request;
  const event = {
    id,
    topic,
    payload,
    createdAt: Date.now(),
    recorded: true,
    ...(callback ? { callback } : {}),
    traceparent,
  };
  await deps.publish(event);
  deps.metrics.published(topic);
  const tasks = subscribers.map((handler) => ({ handler, id: eventTaskId(id, handler) }));
  await recordQueued(
    deps,
    tasks.map(({ handler, id: taskId }): TaskEvent => ({
      ...queuedEvent({
        id: taskId,
        handler,
        payload,
        createdAt: event.createdAt,
        callback,
        traceparent,
      }),
      event: { id, topic },
    })),
  );
  return JSON.stringify({
    id,
    topic,
    created_at: new Date(event.createdAt).toISOString(),
    tasks: tasks.map((task) => ({ ...task, links: taskLinks(task.id) })),
  });
}
