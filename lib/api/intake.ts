/**
 * What the routes that take work in (`POST /tasks/{handler}`, `POST /events/{topic}`) share: the
 * body limit, the answers to a payload that breaks a rule, and recording the tasks they queued.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { urlProblem } from "../callback/destination.ts";
import type { NewTask } from "../amqp/publish.ts";
import type { TaskEvent } from "../events.ts";
import { traceIdOf } from "../trace.ts";
import { errorMessage, logger } from "../log.ts";
import type { PayloadRefusal } from "../payload.ts";
import type { ApiDeps } from "./deps.ts";
import { problem } from "./problem.ts";
import { isMultipart } from "./uploads.ts";

/**
 * Refuses a body over `maxBytes` with 413 before it is read whole. A multipart upload is left to
 * its own limits (each file's size, each field's; see `uploads.ts`).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * new Hono().post("/tasks/:handler", payloadLimit(1_048_576), (c) => c.text("ok"));
 * ```
 */
export function payloadLimit(maxBytes: number): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () =>
      problem({
        slug: "payload-too-large",
        title: "Payload too large",
        status: 413,
        detail: `the body is over the limit of ${maxBytes} bytes (WARREN_MAX_BODY)`,
      }),
  });
  return (c, next) => isMultipart(c.req.header("content-type")) ? next() : limit(c, next);
}

/**
 * Reads the `Callback-Url` header: undefined when absent, the URL, or the 400 that refuses it
 * (no secret to sign callbacks with, a URL of the wrong form, an address not allowed).
 *
 * @example
 * ```ts
 * declare const c: import("hono").Context;
 * declare const deps: import("./deps.ts").ApiDeps;
 * const callback = readCallback(c.req.header("callback-url"), deps);
 * if (callback instanceof Response) console.log(callback.status); // 400
 * ```
 */
export function readCallback(
  header: string | undefined,
  deps: Pick<ApiDeps, "callbacks">,
): string | undefined | Response {
  if (header === undefined) return undefined;
  const wrong = deps.callbacks.secret === undefined
    ? "callbacks are signed: set WARREN_WEBHOOK_SECRET (whsec_…) on the api to use Callback-Url"
    : urlProblem(header.trim(), deps.callbacks.allow);
  if (wrong === undefined) return header.trim();
  return problem({ slug: "bad-callback", title: "Bad Callback-Url", status: 400, detail: wrong });
}

/**
 * The `queued` event of a task the api published (`runAt` when it waits for a delay).
 *
 * @example
 * ```ts
 * queuedEvent({ id: "t-1", handler: "hello", payload: {}, createdAt: 1 }).type; // "queued"
 * ```
 */
export function queuedEvent(task: NewTask, runAt?: number): TaskEvent {
  return {
    type: "queued",
    id: task.id,
    handler: task.handler,
    attempt: 0,
    at: task.createdAt,
    payload: task.payload,
    ...(runAt === undefined ? {} : { runAt }),
    ...(task.files ? { files: task.files } : {}),
    ...(task.callback ? { callback: task.callback } : {}),
    ...(task.traceparent ? { traceId: traceIdOf(task.traceparent) } : {}),
  };
}

/**
 * Records the `queued` events of tasks the broker confirmed. While the store is away they go by
 * the events queue instead (with the payload, which no later event carries), for the recorder to
 * write once it can: the tasks are safe in the broker either way.
 *
 * @example
 * ```ts
 * declare const deps: import("./deps.ts").ApiDeps;
 * await recordQueued(deps, [{ type: "queued", id: "t-1", handler: "hello", attempt: 0, at: 1 }]);
 * ```
 */
export async function recordQueued(
  deps: Pick<ApiDeps, "writer" | "recordLater">,
  queued: TaskEvent[],
): Promise<void> {
  if (queued.length === 0) return;
  const log = logger("api");
  await deps.writer.write(queued).catch(async (error) => {
    const ids = queued.map((event) => event.id).join(", ");
    log.warn("cannot store queued task(s) {ids} now ({error}); they are recorded later", {
      ids,
      error: errorMessage(error),
    });
    // The events of one message share a handler (its routing key).
    const byHandler = Map.groupBy(queued, (event) => event.handler);
    for (const events of byHandler.values()) {
      await deps.recordLater(events).catch((later) =>
        log.error("cannot record queued task(s) {ids}: {error}", {
          ids: events.map((event) => event.id).join(", "),
          error: errorMessage(later),
        })
      );
    }
  });
}

/** The answer to a payload that breaks a rule: 400, 413 or 422. */
export function refusedPayload(refusal: PayloadRefusal): Response {
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

/** A 415 saying what to send instead. */
export function unsupported(detail: string): Response {
  return problem({
    slug: "unsupported-media-type",
    title: "Unsupported media type",
    status: 415,
    detail,
  });
}
