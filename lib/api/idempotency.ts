/**
 * `Idempotency-Key` on the routes that enqueue (the IETF httpapi draft's semantics): the first
 * request with a key enqueues; a repeat with the same key and the same request within the key's
 * lifetime (`WARREN_IDEMPOTENCY_TTL`, 24 h) is answered as the first was, with
 * `Idempotent-Replayed: true`, and enqueues nothing; the same key with another request is 422; a
 * repeat while the first is still being enqueued is 409 with `Retry-After`. A request whose
 * publish went unconfirmed keeps the key; once its lease runs out, a repeat publishes again under
 * the same task id, so a client that retries with its key never makes a second task. The store
 * decides each claim atomically, on every api node.
 *
 * A handler may derive the key from its payload (`config.idempotencyKey`, JSON Pointers, see
 * `../idempotency.ts`), for producers that send no header.
 *
 * @module
 */

import type { KeyVerdict } from "../store/keys.ts";
import type { ApiDeps } from "./deps.ts";
import { UnavailableError } from "./errors.ts";
import { problem } from "./problem.ts";

/** The header that marks an answer given again. */
export const REPLAYED_HEADER = "idempotent-replayed";
/** The longest key. */
const KEY_MAX = 255;

/**
 * Reads the `Idempotency-Key` header: undefined when absent, the key, or the 400 that refuses it.
 *
 * @example
 * ```ts
 * readKey("order-42"); // "order-42"
 * ```
 */
export function readKey(header: string | undefined): string | undefined | Response {
  if (header === undefined) return undefined;
  const key = header.trim().replace(/^"(.*)"$/, "$1"); // the draft's form is a quoted string
  if (key.length > 0 && key.length <= KEY_MAX && /^[\x20-\x7e]+$/.test(key)) return key;
  return problem({
    slug: "bad-idempotency-key",
    title: "Bad Idempotency-Key",
    status: 400,
    detail: `an Idempotency-Key is 1 to ${KEY_MAX} printable ASCII characters`,
  });
}

/** What happened to a request under a key. */
export type KeyedOutcome =
  | { kind: "published"; taskId: string; answer: string }
  | { kind: "replayed"; taskId: string; answer: string };

/**
 * Publishes by `publish(taskId)` (which resolves with the answer to give), under `key` when
 * there is one; resolves with what happened, or with the 409 or 422 that refuses the request.
 *
 * @example
 * ```ts
 * declare const deps: import("./deps.ts").ApiDeps;
 * const outcome = await underKey(deps, {
 *   scope: "task:hello", key: "k-1", fingerprint: () => "…", taskId: "t-1",
 * }, (id) => Promise.resolve(JSON.stringify({ id })));
 * ```
 */
export async function underKey(
  deps: Pick<ApiDeps, "store" | "idempotency">,
  request: {
    scope: string;
    key: string | undefined;
    /** The request's fingerprint, computed only when there is a key to hold it against. */
    fingerprint: () => string;
    taskId: string;
  },
  publish: (taskId: string, again: boolean) => Promise<string>,
): Promise<KeyedOutcome | Response> {
  const { scope, key } = request;
  if (key === undefined) {
    return {
      kind: "published",
      taskId: request.taskId,
      answer: await publish(request.taskId, false),
    };
  }
  const verdict = await deps.store.claimKey({
    ...request,
    fingerprint: request.fingerprint(),
    key,
    now: Date.now(),
    leaseMs: deps.idempotency.leaseMs,
    ttlMs: deps.idempotency.ttlMs,
  });
  if (verdict.kind === "replay") {
    return { kind: "replayed", taskId: verdict.taskId, answer: verdict.answer };
  }
  if (verdict.kind === "busy" || verdict.kind === "mismatch") return refusal(verdict);
  const taskId = verdict.kind === "retry" ? verdict.taskId : request.taskId;
  let answer: string;
  try {
    answer = await publish(taskId, verdict.kind === "retry");
  } catch (error) {
    // Nothing left this process: a repeat may try afresh. Else the key waits for its lease.
    const mayRun = error instanceof UnavailableError && error.mayRunAs !== undefined;
    if (!mayRun) await deps.store.releaseKey(scope, key, taskId);
    throw error;
  }
  await deps.store.completeKey(scope, key, answer);
  return { kind: "published", taskId, answer };
}

function refusal(verdict: Extract<KeyVerdict, { kind: "busy" | "mismatch" }>): Response {
  if (verdict.kind === "mismatch") {
    return problem({
      slug: "idempotency-key-reused",
      title: "Idempotency-Key reused",
      status: 422,
      detail: "this Idempotency-Key was used for a different request; use a new key",
    });
  }
  return problem({
    slug: "idempotency-key-in-use",
    title: "Idempotency-Key in use",
    status: 409,
    detail: "a request with this Idempotency-Key is being enqueued now; try again shortly",
  }, { "retry-after": String(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))) });
}
