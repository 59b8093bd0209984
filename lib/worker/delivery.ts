/**
 * What a delivery says about its task: id, attempt, replay, creation time, and how often the
 * broker delivered it before.
 *
 * @module
 */

import type { Message } from "amqplib";
import { ATTEMPT_HEADER, CREATED_AT_HEADER, REPLAY_HEADER } from "../enqueue.ts";
import { newTaskId } from "../id.ts";
import { runKey } from "./ledger.ts";

/** The facts of a task as its message carries them. */
export interface TaskFacts {
  id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Replays from the dead letters so far. */
  replay: number;
  /** When it was enqueued (ms since the epoch), when the message says. */
  createdAt: number | undefined;
  /**
   * Whether a Warren producer sent it: those record the task (payload, creation time) before
   * publishing, so the worker's events need not carry them.
   */
  fromWarren: boolean;
  /** Earlier deliveries of this message that ended without an ack (quorum queues count them). */
  deliveries: number;
  /** The ledger's name for this attempt. */
  key: string;
}

/**
 * Reads a delivery's task facts. A message without `message_id` (from another AMQP client) gets
 * a fresh id.
 *
 * @example
 * ```ts
 * const { id, attempt } = readDelivery(message);
 * ```
 */
export function readDelivery(message: Message): TaskFacts {
  const props = message.properties;
  const headers = props.headers ?? {};
  const id = typeof props.messageId === "string" && props.messageId ? props.messageId : newTaskId();
  const attempt = positiveInteger(headers[ATTEMPT_HEADER]) ?? 1;
  const replay = positiveInteger(headers[REPLAY_HEADER]) ?? 0;
  const createdAtHeader = positiveInteger(headers[CREATED_AT_HEADER]);
  return {
    id,
    attempt,
    replay,
    createdAt: createdAtHeader ??
      (typeof props.timestamp === "number" ? props.timestamp * 1000 : undefined),
    fromWarren: createdAtHeader !== undefined,
    deliveries: positiveInteger(headers["x-delivery-count"]) ?? 0,
    key: runKey(id, replay, attempt),
  };
}

function positiveInteger(value: unknown): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
