/**
 * A handler's context (`ctx`): the task's id, handler and attempt, the attempt's abort signal, a
 * logger, `progress` and `enqueue`. `ctx.enqueue` checks a payload as POST does: a known handler,
 * JSON nested at most 128 levels, the target's schema.
 *
 * @module
 */

import type { NewTask } from "../amqp/publish.ts";
import type { TaskEvent } from "../events.ts";
import type { Context } from "../handler.ts";
import { newTaskId } from "../id.ts";
import { toJson } from "../payload.ts";
import { compileSchema, type Validator } from "../schema.ts";
import type { HandlerSchema } from "./protocol.ts";
import { eventOf, type Task } from "./task.ts";

/** The payload checks of every handler, compiled when first needed. */
export interface Schemas {
  /** Whether a handler of that name exists. */
  has(handler: string): boolean;
  /** Its payload check; undefined when it has no schema. */
  validator(handler: string): Validator | undefined;
}

/**
 * The checks of the handlers' schemas.
 *
 * @example
 * ```ts
 * const schemas = schemasOf([{ name: "typed", schema: { type: "object", required: ["n"] } }]);
 * schemas.validator("typed")?.({}); // [{ pointer: "", message: "must have required property 'n'" }]
 * ```
 */
export function schemasOf(handlers: HandlerSchema[]): Schemas {
  const schemas = new Map(handlers.map((h) => [h.name, h.schema]));
  const compiled = new Map<string, Validator | undefined>();
  return {
    has: (handler) => schemas.has(handler),
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
    const violations = deps.schemas.validator(handler)?.(payload) ?? [];
    if (violations.length > 0) {
      throw new Error(
        `ctx.enqueue: the payload does not match the schema of "${handler}": ` +
          violations.map((v) => `${v.pointer || "payload"} ${v.message}`).join("; "),
      );
    }
    const task = { id: newTaskId(), handler, payload, createdAt: Date.now() };
    await deps.publish(task);
    deps.report({ type: "queued", id: task.id, handler, attempt: 0, at: task.createdAt, payload });
    return task.id;
  };
}

/**
 * The context of one attempt of `task`.
 *
 * @example
 * ```ts
 * declare const task: import("./task.ts").Task;
 * declare const enqueue: import("../handler.ts").Context["enqueue"];
 * const ctx = createContext(task, new AbortController().signal, { report: () => {}, enqueue });
 * ctx.progress(0.5);
 * ```
 */
export function createContext(
  task: Task,
  signal: AbortSignal,
  deps: { report(event: TaskEvent): void; enqueue: Context["enqueue"] },
): Context {
  return {
    id: task.id,
    handler: task.handler,
    attempt: task.attempt,
    signal,
    log: task.log,
    progress: (value) => deps.report(eventOf(task, "progress", { progress: toJson(value) })),
    enqueue: deps.enqueue,
  };
}
