/**
 * A handler's context (`ctx`): the task's id, handler, attempt and event, the attempt's abort
 * signal, a logger, `progress`, `enqueue` and `publish`. `ctx.enqueue` and `ctx.publish` check a
 * payload as POST does: a known handler or a valid topic, JSON nested at most 128 levels, the
 * schema of the target (of every handler subscribed to the topic).
 *
 * @module
 */

import { taskTraceparent, traceIdOf } from "../trace.ts";
import type { NewEvent, NewTask } from "../amqp/publish.ts";
import type { TaskEvent } from "../events.ts";
import type { Context } from "../handler.ts";
import { newTaskId } from "../id.ts";
import { toJson } from "../payload.ts";
import { compileSchema, describeViolations, type Validator } from "../schema.ts";
import { acceptedAnswer, derivedKey, fingerprint, taskScope } from "../idempotency.ts";
import { subscribersOf, topicProblem } from "../topics.ts";
import type { AskKeys } from "./keys.ts";
import type { HandlerSchema } from "./protocol.ts";
import { eventOf, type Task } from "./task.ts";

/** The payload checks of every handler, compiled when first needed. */
export interface Schemas {
  /** Whether a handler of that name exists. */
  has(handler: string): boolean;
  /** The handlers subscribed to a topic. */
  subscribers(topic: string): string[];
  /** Where a handler's idempotency key is in a payload; empty for none. */
  keyOf(handler: string): readonly string[];
  /** Its payload check; undefined when it has no schema. */
  validator(handler: string): Validator | undefined;
}

/**
 * The checks of the handlers' schemas.
 *
 * @example
 * ```ts
 * const schemas = schemasOf([
 *   { name: "typed", schema: { type: "object", required: ["n"] }, subscribe: [], idempotencyKey: [] },
 * ]);
 * schemas.validator("typed")?.({}); // [{ pointer: "", message: "must have required property 'n'" }]
 * ```
 */
export function schemasOf(handlers: HandlerSchema[]): Schemas {
  const schemas = new Map(handlers.map((h) => [h.name, h.schema]));
  const compiled = new Map<string, Validator | undefined>();
  return {
    has: (handler) => schemas.has(handler),
    subscribers: (topic) => subscribersOf(handlers, topic),
    keyOf: (handler) => handlers.find((h) => h.name === handler)?.idempotencyKey ?? [],
    validator(handler) {
      if (!compiled.has(handler)) {
        const schema = schemas.get(handler);
        compiled.set(handler, schema === undefined ? undefined : compileSchema(schema));
      }
      return compiled.get(handler);
    },
  };
}

/** What `ctx.enqueue` needs. */
export interface EnqueueDeps {
  schemas: Schemas;
  /** Publishes a new task, confirmed; throws while disconnected. */
  publish(task: NewTask): Promise<void>;
  /** Reports an event without waiting (the new task's `queued`). */
  report(event: TaskEvent): void;
  /** Asks the api about an idempotency key (for a target with `config.idempotencyKey`). */
  keys?: AskKeys;
}

/**
 * `ctx.enqueue`: checks the payload as POST does, publishes the task, reports it queued, and
 * resolves with its id once the broker confirmed it.
 *
 * @example
 * ```ts
 * declare const deps: EnqueueDeps;
 * const enqueue = createEnqueue(deps);
 * const id = await enqueue("hello", { message: "hi" });
 * ```
 */
export function createEnqueue(deps: EnqueueDeps): Context["enqueue"] {
  return async (handler, taskPayload = {}) => {
    if (!deps.schemas.has(handler)) throw new Error(`ctx.enqueue: unknown handler "${handler}"`);
    const payload = toJson(taskPayload);
    check(deps.schemas, "ctx.enqueue", handler, payload);
    const key = deps.keys && derivedKey([...deps.schemas.keyOf(handler)], payload);
    if (!key || !deps.keys) return await send(deps, handler, payload, newTaskId());
    // As a POST of the payload with the key would: one task per key.
    const scope = taskScope(handler);
    const print = fingerprint([handler, 0, null], JSON.stringify(payload));
    const claimed = newTaskId();
    const verdict = await deps.keys({
      op: "claim",
      scope,
      key,
      fingerprint: print,
      taskId: claimed,
    });
    if (verdict.kind === "replay") return verdict.taskId;
    if (verdict.kind !== "claimed" && verdict.kind !== "retry") {
      throw new Error(
        verdict.kind === "busy"
          ? `ctx.enqueue: a task with the key "${key}" is being enqueued now; try again`
          : `ctx.enqueue: the key "${key}" was used for another payload of "${handler}"`,
      );
    }
    const id = await send(
      deps,
      handler,
      payload,
      verdict.kind === "retry" ? verdict.taskId : claimed,
    );
    const answer = acceptedAnswer({ id, handler, createdAt: Date.now() });
    await deps.keys({ op: "complete", scope, key, answer });
    return id;
  };
}

/** Publishes a task and reports it queued; resolves with its id. */
async function send(
  deps: EnqueueDeps,
  handler: string,
  payload: unknown,
  id = newTaskId(),
): Promise<string> {
  // Its trace goes on from the attempt's span that enqueues it.
  const traceparent = taskTraceparent(undefined);
  const task = { id, handler, payload, createdAt: Date.now(), traceparent };
  await deps.publish(task);
  deps.report({
    type: "queued",
    id: task.id,
    handler,
    attempt: 0,
    at: task.createdAt,
    payload,
    traceId: traceIdOf(traceparent),
  });
  return task.id;
}

/** Throws when `payload` breaks the schema of `handler`, naming the call and the handler. */
function check(schemas: Schemas, call: string, handler: string, payload: unknown): void {
  const violations = schemas.validator(handler)?.(payload) ?? [];
  if (violations.length > 0) {
    throw new Error(
      `${call}: the payload does not match the schema of "${handler}": ` +
        describeViolations(violations),
    );
  }
}

/** What `ctx.publish` needs. */
export interface PublishDeps {
  schemas: Schemas;
  /** Publishes an event, confirmed; throws while disconnected. */
  publish(event: NewEvent): Promise<void>;
}

/**
 * `ctx.publish`: checks the topic and the payload (against the schema of every subscriber this
 * process knows), publishes the event, and resolves with its id once the broker confirmed it.
 * Its tasks are recorded by the workers that run them, wherever those are.
 *
 * @example
 * ```ts
 * declare const deps: PublishDeps;
 * const publish = createPublish(deps);
 * const id = await publish("order.created", { order: 42 });
 * ```
 */
export function createPublish(deps: PublishDeps): Context["publish"] {
  return async (topic, eventPayload = {}) => {
    const problem = topicProblem(topic);
    if (problem) throw new Error(`ctx.publish: ${problem}`);
    const payload = toJson(eventPayload);
    for (const handler of deps.schemas.subscribers(topic)) {
      check(deps.schemas, "ctx.publish", handler, payload);
    }
    const event = {
      id: newTaskId(),
      topic,
      payload,
      createdAt: Date.now(),
      recorded: false,
      traceparent: taskTraceparent(undefined),
    };
    await deps.publish(event);
    return event.id;
  };
}

/**
 * The context of one attempt of `task`.
 *
 * @example
 * ```ts
 * declare const task: import("./task.ts").Task;
 * declare const enqueue: import("../handler.ts").Context["enqueue"];
 * declare const publish: import("../handler.ts").Context["publish"];
 * const signal = new AbortController().signal;
 * const ctx = createContext(task, signal, { report: () => {}, enqueue, publish });
 * ctx.progress(0.5);
 * ```
 */
export function createContext(
  task: Task,
  signal: AbortSignal,
  deps: {
    report(event: TaskEvent): void;
    enqueue: Context["enqueue"];
    publish: Context["publish"];
    /** The task's files; none when absent. */
    files?: Context["files"];
  },
): Context {
  return {
    id: task.id,
    handler: task.handler,
    attempt: task.attempt,
    signal,
    log: task.log,
    progress: (value) => deps.report(eventOf(task, "progress", { progress: toJson(value) })),
    enqueue: deps.enqueue,
    publish: deps.publish,
    event: task.event,
    files: deps.files ?? {},
  };
}
