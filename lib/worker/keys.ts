/**
 * A worker's side of idempotency keys: it asks the api over the broker (see
 * `api/key_server.ts`), so that `ctx.enqueue` and the messages of other AMQP clients are
 * deduplicated by a handler's `config.idempotencyKey` as POSTs are.
 *
 * @module
 */

import type { Channel } from "amqplib";
import { openCaller } from "../amqp/rpc.ts";
import type { Topology } from "../amqp/topology.ts";
import type { KeyRequest } from "../api/key_server.ts";
import { derivedKey, fingerprint, taskScope } from "../idempotency.ts";
import { errorMessage } from "../log.ts";
import type { KeyVerdict } from "../store/keys.ts";
import type { KeyHolding } from "./executor.ts";
import type { Task } from "./task.ts";

/** How long the api has to answer. */
const ANSWER_MS = 10_000;

/** Asks the api about a key; rejects when no api node answers or the store is away. */
export type AskKeys = (request: KeyRequest) => Promise<KeyVerdict | { kind: "done" }>;

/**
 * Asks over a channel of its own, opened for each request.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * declare const open: () => Promise<import("amqplib").Channel>;
 * const ask = keyAsker({ names: topology("warren"), open });
 * await ask({ op: "release", scope: "task:hello", key: "k", taskId: "t-1" });
 * ```
 */
export function keyAsker(deps: { names: Topology; open(): Promise<Channel> }): AskKeys {
  return async (request) => {
    const caller = await openCaller(await deps.open(), deps.names.keysQueue, ANSWER_MS);
    try {
      const answer = await caller.call(
        new TextEncoder().encode(JSON.stringify(request)),
        `idempotency key "${request.key}"`,
      );
      return JSON.parse(new TextDecoder().decode(answer));
    } finally {
      await caller.close();
    }
  };
}

/**
 * A handler's check of its deliveries' keys (see `ExecutorDeps.holdsKey`), or undefined for a
 * handler that derives none.
 *
 * @example
 * ```ts
 * declare const ask: AskKeys;
 * const holdsKey = keyHolder(ask, "order", ["/order_id"]);
 * ```
 */
export function keyHolder(
  ask: AskKeys,
  handler: string,
  pointers: readonly string[],
): ((task: Task, payload: unknown) => Promise<KeyHolding>) | undefined {
  if (pointers.length === 0) return undefined;
  return async (task, payload) => {
    const key = derivedKey([...pointers], payload);
    if (key === undefined) return "holds";
    let verdict: Awaited<ReturnType<AskKeys>>;
    try {
      verdict = await ask({
        op: "record",
        scope: taskScope(handler),
        key,
        fingerprint: fingerprint([handler, 0, null], JSON.stringify(payload)),
        taskId: task.id,
      });
    } catch (error) {
      return {
        error: { name: "IdempotencyKeyUnchecked", message: errorMessage(error) },
        permanent: false,
      };
    }
    if (verdict.kind === "claimed") return "holds";
    if (verdict.kind === "replay") return "repeat";
    const message = verdict.kind === "mismatch"
      ? `the idempotency key "${key}" holds task ${verdict.taskId}, made of another payload`
      : `the idempotency key "${key}" is being taken by task ${
        "taskId" in verdict ? verdict.taskId : "?"
      }; tried again later`;
    return {
      error: { name: "IdempotencyKeyTaken", message },
      permanent: verdict.kind === "mismatch",
    };
  };
}
