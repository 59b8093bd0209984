/**
 * Putting a task on its handler's queue: the message format every producer shares (the api, a
 * handler's `ctx.enqueue`), and the one any AMQP client can copy (see the README's wire format).
 *
 * @module
 */

import type { ConfirmChannel } from "amqplib";
import type { Topology } from "./amqp/topology.ts";
import { publishConfirmed } from "./amqp/publish.ts";

/** Header carrying the attempt number (1 for the first run). */
export const ATTEMPT_HEADER = "x-warren-attempt";
/** Header carrying the enqueue time in ms since the epoch (AMQP's timestamp has only seconds). */
export const CREATED_AT_HEADER = "x-warren-created-at";

/** A task to publish. */
export interface NewTask {
  id: string;
  handler: string;
  payload: unknown;
  createdAt: number;
}

const encoder = new TextEncoder();

/**
 * Publishes a task as a persistent JSON message and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * await publishTask(ch, names, { id, handler: "hello", payload: {}, createdAt: Date.now() }, 5000);
 * ```
 */
export function publishTask(
  ch: ConfirmChannel,
  names: Topology,
  task: NewTask,
  timeoutMs: number,
): Promise<void> {
  return publishConfirmed(
    ch,
    names.tasksExchange,
    task.handler,
    encoder.encode(JSON.stringify(task.payload)),
    {
      messageId: task.id,
      contentType: "application/json",
      timestamp: Math.floor(task.createdAt / 1000),
      headers: { [ATTEMPT_HEADER]: 1, [CREATED_AT_HEADER]: task.createdAt },
    },
    timeoutMs,
  );
}
