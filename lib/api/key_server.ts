/**
 * Answering workers about idempotency keys, over the broker (see `amqp/rpc.ts`): `ctx.enqueue`
 * claims a key before it publishes and completes it after, and a worker that takes another
 * client's message for a handler with `config.idempotencyKey` records the key before running it.
 * The store decides, as it does for the api's own requests.
 *
 * Requests are JSON `{op, scope, key, fingerprint, taskId, answer}` with `op` one of `claim`,
 * `complete`, `release` or `record`; answers are a `KeyVerdict` (`record`: `claimed` when this
 * task holds the key) or `{"kind":"done"}`, or the header `x-warren-error`.
 *
 * @module
 */

import type { Channel } from "amqplib";
import { Refusal, serveCalls } from "../amqp/rpc.ts";
import { acceptedAnswer } from "../idempotency.ts";
import type { Topology } from "../amqp/topology.ts";
import { errorMessage, type Logger } from "../log.ts";
import type { IdempotencyKeys, KeyVerdict } from "../store/keys.ts";

/** What {@linkcode serveKeys} needs. */
export interface KeyServerDeps {
  names: Topology;
  store: IdempotencyKeys;
  /** How long keys live, and how long a claim holds one. */
  idempotency: { ttlMs: number; leaseMs: number };
  log: Logger;
}

/** A worker's request about a key. */
export interface KeyRequest {
  op: "claim" | "complete" | "release" | "record";
  scope: string;
  key: string;
  fingerprint?: string;
  taskId?: string;
  answer?: string;
}

/**
 * Starts answering requests about keys on a channel; call it again on each new connection.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * import { logger } from "../log.ts";
 * declare const ch: import("amqplib").Channel;
 * declare const store: import("../store/store.ts").TaskStore;
 * await serveKeys(ch, {
 *   names: topology("warren"), store, idempotency: { ttlMs: 86_400_000, leaseMs: 15_000 },
 *   log: logger("keys"),
 * });
 * ```
 */
export async function serveKeys(ch: Channel, deps: KeyServerDeps): Promise<void> {
  await serveCalls(ch, deps.names.keysQueue, 16, async (body) => {
    let request: KeyRequest;
    try {
      request = JSON.parse(new TextDecoder().decode(body));
    } catch {
      throw new Refusal("a malformed request");
    }
    return new TextEncoder().encode(JSON.stringify(await decide(request, deps)));
  }, (error) => {
    deps.log.warn("cannot answer about a key now ({error})", { error: errorMessage(error) });
    return "the store cannot be reached now; try again";
  });
}

/** What the store says to one request. */
async function decide(
  request: KeyRequest,
  deps: KeyServerDeps,
): Promise<KeyVerdict | { kind: "done" }> {
  const { op, scope, key } = request;
  if (op === "complete") await deps.store.completeKey(scope, key, request.answer ?? "");
  if (op === "release") await deps.store.releaseKey(scope, key, request.taskId ?? "");
  if (op === "complete" || op === "release") return { kind: "done" };
  const taskId = request.taskId ?? "";
  const verdict = await deps.store.claimKey({
    scope,
    key,
    fingerprint: request.fingerprint ?? "",
    taskId,
    now: Date.now(),
    ...deps.idempotency,
  });
  if (op === "claim") return verdict;
  // record: a message already in the broker holds the key when nobody else does, or when it is
  // the task that holds it (a POST with other options, a retry, a redelivery).
  const holder = verdict.kind === "claimed" ? taskId : verdict.taskId;
  if (holder !== taskId) return verdict;
  if (verdict.kind === "claimed" || verdict.kind === "retry") {
    const handler = scope.replace(/^task:/, "");
    const answer = acceptedAnswer({ id: taskId, handler, createdAt: Date.now() });
    await deps.store.completeKey(scope, key, answer);
  }
  return { kind: "claimed" };
}
