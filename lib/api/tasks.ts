/**
 * Task routes: enqueue (POST /tasks/{handler}), read (GET /tasks/{id}), watch
 * (GET /tasks/{id}/events, Server-Sent Events) and list (GET /tasks). Enqueue and read may wait
 * for the task's end (`?wait=30s`, see `wait.ts`).
 *
 * @module
 */

import { taskTraceparent } from "../trace.ts";
import type { Context, Hono } from "hono";
import { parseSecondsOrDuration } from "../duration.ts";
import type { NewTask } from "../amqp/publish.ts";
import { isTerminal, TASK_STATES, type TaskState } from "../events.ts";
import { idTime, newTaskId } from "../id.ts";
import { readPayload } from "../payload.ts";
import { compileSchema, describeViolations, type Validator } from "../schema.ts";
import type { FileInfo } from "../files.ts";
import type { HandlerInfo } from "../handler.ts";
import type { ApiDeps } from "./deps.ts";
import { UnavailableError } from "./errors.ts";
import { isMultipart, readUpload } from "./uploads.ts";
import {
  payloadLimit,
  queuedEvent,
  readCallback,
  recordQueued,
  refusedPayload,
  unsupported,
} from "./intake.ts";
import { pageOf, readPage } from "./page.ts";
import { problem } from "./problem.ts";
import { summaryJson, taskJson, taskLinks } from "./task_json.ts";
import { acceptedAnswer, derivedKey, fingerprint, taskScope } from "../idempotency.ts";
import { readKey, REPLAYED_HEADER, underKey } from "./idempotency.ts";
import { awaitEnd, parseWait } from "./wait.ts";
import { watchTask } from "./watch.ts";

/** The longest delay a POST may ask for. */
const MAX_POST_DELAY_SECONDS = 30 * 86_400;

/** Registers the task routes. */
export function taskRoutes(app: Hono, deps: ApiDeps): void {
  const handlers = new Map(deps.handlers.map((h) => [h.name, h]));
  const validators = new Map<string, Validator>();
  for (const h of deps.handlers) {
    if (h.config.schema !== undefined) validators.set(h.name, compileSchema(h.config.schema));
  }

  app.post("/tasks/:handler", payloadLimit(deps.maxBodyBytes), async (c) => {
    const name = c.req.param("handler");
    const handler = handlers.get(name);
    if (!handler) return unknownHandler(name, [...handlers.keys()]);
    const options = readOptions(c, deps);
    if (options instanceof Response) return options;
    deps.admit(); // before reading the body: a refusal costs nothing

    const id = newTaskId();
    const body = await readBody(c.req.raw, handler, id, deps, validators.get(name));
    if (body instanceof Response) return body;
    const { delay, wait, callback, key, traceparent } = options;
    const outcome = await underKey(
      deps,
      {
        scope: taskScope(name),
        key: key ?? derivedKey(handler.config.idempotencyKey, body.payload),
        fingerprint: () => body.fingerprint([name, delay, callback ?? null]),
        taskId: id,
      },
      (taskId, again) =>
        enqueue(deps, { ...body, id: taskId, handler: name, callback, traceparent }, {
          delaySeconds: delay,
          again,
        }),
    );
    // The upload went to waste: the request was refused, or a repeat, or published as an
    // earlier one's task.
    if (body.files.length && (outcome instanceof Response || outcome.taskId !== id)) {
      await deps.store.deleteFiles(id);
    }
    if (outcome instanceof Response) return outcome;
    c.header("location", taskLinks(outcome.taskId).self);
    if (outcome.kind === "replayed") c.header(REPLAYED_HEADER, "true");
    const ended = wait > 0
      ? await awaitEnd(deps, outcome.taskId, wait, c.req.raw.signal)
      : undefined;
    if (ended && isTerminal(ended.state)) return c.json(taskJson(ended), 200);
    return c.body(outcome.answer, 202, { "content-type": "application/json" });
  });

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
    const id = c.req.param("id");
    const wait = parseWait(c.req.query("wait"), deps.maxWaitMs);
    if (typeof wait === "string") return badQuery(wait);
    const task = wait > 0
      ? await awaitEnd(deps, id, wait, c.req.raw.signal)
      : await deps.store.get(id);
    return task ? c.json(taskJson(task)) : unknownTask(id, deps);
  });

  app.get("/tasks/:id/events", async (c) => {
    const task = await deps.store.get(c.req.param("id"));
    return task ? watchTask(c, task, deps) : unknownTask(c.req.param("id"), deps);
  });
}

/** What a POST asks besides its payload: its query parameters and headers. */
interface PostOptions {
  delay: number;
  wait: number;
  callback: string | undefined;
  key: string | undefined;
  /** The task's trace context: the request's span, or the `traceparent` it sent, or a new one. */
  traceparent: string;
}

/** Reads a POST's options, or the 400 that refuses one. */
function readOptions(c: Context, deps: ApiDeps): PostOptions | Response {
  const delay = parseDelay(c.req.query("delay"));
  if (typeof delay === "string") return badQuery(delay);
  const wait = parseWait(c.req.query("wait"), deps.maxWaitMs);
  if (typeof wait === "string") return badQuery(wait);
  const callback = readCallback(c.req.header("callback-url"), deps);
  if (callback instanceof Response) return callback;
  const key = readKey(c.req.header("idempotency-key"));
  if (key instanceof Response) return key;
  return { delay, wait, callback, key, traceparent: taskTraceparent(c.req.header("traceparent")) };
}

/** A POST's body as read: its payload, its files (stored already), and its fingerprint. */
interface Body {
  payload: unknown;
  files: FileInfo[];
  /** The request's fingerprint, with what else it asks (see `idempotency.ts`). */
  fingerprint(parts: unknown[]): string;
}

/**
 * Reads a POST's body: JSON, or for a handler that takes files, a multipart upload (whose files
 * are stored as they come); resolves with the payload and files, or the answer that refuses it.
 */
async function readBody(
  request: Request,
  handler: HandlerInfo,
  id: string,
  deps: ApiDeps,
  validate: Validator | undefined,
): Promise<Body | Response> {
  const specs = handler.config.files;
  const fields = Object.keys(specs);
  if (isMultipart(request.headers.get("content-type") ?? undefined)) {
    if (fields.length === 0) {
      return unsupported(`${handler.name} takes no files: send the payload as JSON`);
    }
    const upload = await readUpload(request, id, specs, {
      store: deps.store,
      maxFieldBytes: deps.maxBodyBytes,
    });
    if (upload instanceof Response) return upload;
    const violations = validate?.(upload.payload) ?? [];
    if (violations.length === 0) {
      const digests = upload.files.map((f) => [f.field, f.sha256]);
      return {
        ...upload,
        fingerprint: (parts) => fingerprint(parts, JSON.stringify([upload.payload, digests])),
      };
    }
    await deps.store.deleteFiles(id);
    return refusedPayload({
      kind: "schema",
      detail: describeViolations(violations),
      violations,
    });
  }
  if (Object.values(specs).some((spec) => spec.required)) {
    return unsupported(
      `${handler.name} takes files: send multipart/form-data with the file field(s) ` +
        `${fields.join(", ")} and the payload's fields`,
    );
  }
  const bytes = new Uint8Array(await request.arrayBuffer());
  const check = readPayload(bytes, { maxBytes: deps.maxBodyBytes, validate });
  if (!check.ok) return refusedPayload(check.refusal);
  // The payload as JSON, not the bytes sent: every producer (ctx.enqueue too) prints it alike.
  const payload = check.payload;
  return {
    payload,
    files: [],
    fingerprint: (parts) => fingerprint(parts, JSON.stringify(payload)),
  };
}

/**
 * Publishes a new task (into the delay cascade for `delay` seconds) and records it queued;
 * resolves with the 202's body. A task that was not sent takes its files with it; one that may
 * still run keeps them.
 */
async function enqueue(
  deps: ApiDeps,
  body: {
    id: string;
    handler: string;
    payload: unknown;
    files: FileInfo[];
    callback?: string;
    traceparent: string;
  },
  options: { delaySeconds: number; again: boolean },
): Promise<string> {
  const delay = options.delaySeconds;
  const task: NewTask = {
    id: body.id,
    handler: body.handler,
    payload: body.payload,
    createdAt: Date.now(),
    ...(body.callback ? { callback: body.callback } : {}),
    ...(body.files.length ? { files: body.files } : {}),
    traceparent: body.traceparent,
  };
  const runAt = delay > 0 ? task.createdAt + delay * 1000 : undefined;
  await deps.enqueue(task, options).catch(async (error) => {
    const mayRun = error instanceof UnavailableError && error.mayRunAs !== undefined;
    if (task.files && !mayRun) await deps.store.deleteFiles(task.id);
    throw error;
  });
  await recordQueued(deps, [queuedEvent(task, runAt)]);
  return acceptedAnswer({ ...task, runAt });
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

/**
 * A 404 for a task the store does not hold: one whose id says it was made before the shortest
 * retention has most likely been deleted as expired, and the answer says so.
 */
export function unknownTask(id: string, deps: Pick<ApiDeps, "retention" | "handlers">): Response {
  const made = idTime(id);
  const kept = Math.min(
    deps.retention.succeeded,
    deps.retention.dead,
    ...deps.handlers.flatMap((h) => Object.values(h.config.retention)),
  );
  const expired = made !== undefined && made < Date.now() - kept;
  return problem({
    slug: expired ? "expired-task" : "unknown-task",
    title: expired ? "Task expired" : "Unknown task",
    status: 404,
    detail: expired
      ? `task "${id}" has expired: ended tasks are deleted after their retention ` +
        `(WARREN_RETENTION, WARREN_RETENTION_DEAD, or the handler's config.retention)`
      : `no task with id "${id}"`,
  });
}

/**
 * Reads `?delay=`: seconds (`90`) or a duration (`90s`, `1h30m`), rounded up to whole seconds
 * (a task never runs early). Returns 0 when absent, or what is wrong as a string.
 */
function parseDelay(text: string | undefined): number | string {
  if (text === undefined || text === "") return 0;
  const ms = parseSecondsOrDuration(text);
  if (ms === undefined || ms > MAX_POST_DELAY_SECONDS * 1000) {
    return `delay must be seconds (90) or a duration (90s, 2h, 7d) of at most 30 days ` +
      `(got "${text}")`;
  }
  return Math.ceil(ms / 1000);
}

/** A 400 for a query parameter that cannot be used. */
export function badQuery(detail: string): Response {
  return problem({ slug: "bad-query", title: "Bad query parameter", status: 400, detail });
}
