/**
 * What every producer of a task agrees on about idempotency keys, wherever it runs (the api, a
 * worker's `ctx.enqueue`, a worker taking another client's message): the key a handler derives
 * from a payload, the scope a key is unique in, and a request's fingerprint.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { taskLinks } from "./api/task_json.ts";

/**
 * The scope of a handler's task keys.
 *
 * @example
 * ```ts
 * taskScope("hello"); // "task:hello"
 * ```
 */
export function taskScope(handler: string): string {
  return `task:${handler}`;
}

/**
 * The key a handler derives from a payload: the values at its JSON Pointers, or undefined when
 * it derives none or the payload lacks one.
 *
 * @example
 * ```ts
 * derivedKey(["/order/id"], { order: { id: 42 } }); // "42"
 * ```
 */
export function derivedKey(pointers: string[], payload: unknown): string | undefined {
  if (pointers.length === 0) return undefined;
  const values: string[] = [];
  for (const pointer of pointers) {
    let value: unknown = payload;
    for (const token of pointer.split("/").slice(1)) {
      const name = token.replaceAll("~1", "/").replaceAll("~0", "~");
      value = typeof value === "object" && value !== null
        ? (value as Record<string, unknown>)[name]
        : undefined;
    }
    if (typeof value !== "string" && typeof value !== "number") return undefined;
    values.push(String(value));
  }
  return values.length === 1 ? values[0] : JSON.stringify(values);
}

/**
 * The fingerprint of a request: SHA-256 of what it asks, so that a repeat that asks something else
 * is told apart.
 *
 * @example
 * ```ts
 * fingerprint(["task:hello", 0, null], '{"message":"hi"}');
 * ```
 */
export function fingerprint(parts: unknown[], body: string | Uint8Array): string {
  return createHash("sha256").update(JSON.stringify(parts)).update("\n").update(body)
    .digest("hex");
}

/**
 * The answer to a POST that enqueued a task (its 202's body), as a key keeps it for repeats,
 * whoever made the task.
 *
 * @example
 * ```ts
 * acceptedAnswer({ id: "t-1", handler: "hello", createdAt: Date.now() });
 * ```
 */
export function acceptedAnswer(
  task: { id: string; handler: string; createdAt: number; runAt?: number },
): string {
  return JSON.stringify({
    id: task.id,
    handler: task.handler,
    state: "queued",
    created_at: new Date(task.createdAt).toISOString(),
    run_at: task.runAt === undefined ? null : new Date(task.runAt).toISOString(),
    links: taskLinks(task.id),
  });
}
