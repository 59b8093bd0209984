/**
 * Putting a task on its handler's queue: the message format every producer shares (the api, a
 * handler's `ctx.enqueue`, retries and replays), and the one any AMQP client can copy (see the
 * README's wire format).
 *
 * @module
 */

import type { ConfirmChannel } from "amqplib";
import { delayRoute, type Topology } from "./amqp/topology.ts";
import { publishConfirmed } from "./amqp/publish.ts";

/** Header carrying the attempt number (1 for the first run). */
export const ATTEMPT_HEADER = "x-warren-attempt";
/** Header carrying the enqueue time in ms since the epoch (AMQP's timestamp has only seconds). */
export const CREATED_AT_HEADER = "x-warren-created-at";
/** Header counting the replays of a dead task (absent for 0). */
export const REPLAY_HEADER = "x-warren-replay";

/** A task to publish. */
export interface NewTask {
  id: string;
  handler: string;
  payload: unknown;
  createdAt: number;
}

/** How a task is sent: when it may run, and which run of it this is. */
export interface SendOptions {
  /** Whole seconds to wait before it runs; 0 or absent for now. */
  delaySeconds?: number;
  /** Attempt number; default 1. */
  attempt?: number;
  /** Replays so far; default 0. */
  replay?: number;
}

const encoder = new TextEncoder();

/**
 * Publishes a task as a persistent JSON message and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * const task = { id, handler: "hello", payload: {}, createdAt: Date.now() };
 * await publishTask(ch, names, task, 5000, { delaySeconds: 90 });
 * ```
 */
export function publishTask(
  ch: ConfirmChannel,
  names: Topology,
  task: NewTask,
  timeoutMs: number,
  options: SendOptions = {},
): Promise<void> {
  return sendTask(
    ch,
    names,
    {
      id: task.id,
      handler: task.handler,
      body: encoder.encode(JSON.stringify(task.payload)),
      createdAt: task.createdAt,
    },
    timeoutMs,
    options,
  );
}

/** A task as it travels: its payload already encoded. */
export interface TaskMessage {
  id: string;
  handler: string;
  body: Uint8Array;
  createdAt: number | undefined;
}

/** Publishes an encoded task (a retry or replay resends the bytes it received). */
export function sendTask(
  ch: ConfirmChannel,
  names: Topology,
  task: TaskMessage,
  timeoutMs: number,
  options: SendOptions = {},
): Promise<void> {
  const { delaySeconds = 0, attempt = 1, replay = 0 } = options;
  const route = delaySeconds > 0
    ? delayRoute(names, delaySeconds, task.handler)
    : { exchange: names.tasksExchange, routingKey: task.handler };
  const headers: Record<string, unknown> = { [ATTEMPT_HEADER]: attempt };
  if (task.createdAt !== undefined) headers[CREATED_AT_HEADER] = task.createdAt;
  if (replay > 0) headers[REPLAY_HEADER] = replay;
  return publishConfirmed(ch, route.exchange, route.routingKey, task.body, {
    messageId: task.id,
    contentType: "application/json",
    timestamp: Math.floor((task.createdAt ?? Date.now()) / 1000),
    headers,
  }, timeoutMs);
}
