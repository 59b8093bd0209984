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
  /** When it was enqueued (ms since the epoch): as the message says, or when first seen. */
  createdAt: number;
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
  const attempt = positiveInteger(headers[ATTEMPT_HEADER], COUNT_MAX) ?? 1;
  const replay = positiveInteger(headers[REPLAY_HEADER], COUNT_MAX) ?? 0;
  const createdAtHeader = positiveInteger(headers[CREATED_AT_HEADER], TIME_MAX_MS);
  const timestamp = positiveInteger(props.timestamp, TIME_MAX_MS / 1000);
  return {
    id,
    attempt,
    replay,
    // A message that does not say when it was enqueued was enqueued by now at the latest.
    createdAt: createdAtHeader ?? (timestamp === undefined ? Date.now() : timestamp * 1000),
    fromWarren: createdAtHeader !== undefined,
    deliveries: positiveInteger(headers["x-delivery-count"], Number.MAX_SAFE_INTEGER) ?? 0,
    key: runKey(id, replay, attempt),
  };
}

/** The largest attempt or replay count a message may claim; larger ones are ignored. */
const COUNT_MAX = 1_000_000;
/** The latest time a Date can hold (ms since the epoch); a later one is not a time. */
const TIME_MAX_MS = 8.64e15;

/** A whole number from 1 to `max` read from a header, or undefined: any producer may set it. */
function positiveInteger(value: unknown, max: number): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isInteger(n) && n > 0 && n <= max ? n : undefined;
}
