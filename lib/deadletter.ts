/**
 * Dead letters: the message a task becomes when its retries are exhausted (or it failed for
 * good), kept in its handler's queue `<prefix>.dead.<handler>` with the payload as it came and
 * the reason in headers, and the operations on that queue: list, replay, purge.
 *
 * | header | value |
 * |---|---|
 * | `x-warren-error` | the last error's message (at most 4 KB) |
 * | `x-warren-error-name` | its name, e.g. `TypeError` (at most 256 bytes) |
 * | `x-warren-error-stack` | its stack (at most 4 KB) |
 * | `x-warren-attempts` | attempts made |
 * | `x-warren-failed-at` | when the last attempt failed, ms since the epoch |
 * | `x-warren-created-at`, `x-warren-replay` | as on the task |
 *
 * @module
 */

import type { Channel, ConfirmChannel, GetMessage, Message } from "amqplib";
import type { Topology } from "./amqp/topology.ts";
import { publishConfirmed } from "./amqp/publish.ts";
import { CREATED_AT_HEADER, REPLAY_HEADER, sendTask } from "./enqueue.ts";
import type { TaskError } from "./events.ts";
import { bound, ERROR_NAME_MAX_BYTES, ERROR_TEXT_MAX_BYTES } from "./task_error.ts";

const ERROR_HEADER = "x-warren-error";
const ERROR_NAME_HEADER = "x-warren-error-name";
const ERROR_STACK_HEADER = "x-warren-error-stack";
const ATTEMPTS_HEADER = "x-warren-attempts";
const FAILED_AT_HEADER = "x-warren-failed-at";

/** A task in a dead-letter queue. */
export interface DeadLetter {
  id: string;
  handler: string;
  payload: unknown;
  error: TaskError;
  attempts: number;
  /** Replays before this death. */
  replay: number;
  createdAt: number | null;
  failedAt: number | null;
}

/** What the worker knows of a task when it dies. */
export interface Death {
  id: string;
  handler: string;
  /** The payload exactly as delivered. */
  body: Uint8Array;
  error: TaskError;
  attempts: number;
  replay: number;
  createdAt: number | undefined;
}

/** Puts a task into its handler's dead-letter queue and waits for the broker's confirm. */
export function publishDeadLetter(
  ch: ConfirmChannel,
  names: Topology,
  death: Death,
  timeoutMs: number,
): Promise<void> {
  // Each text is bounded (about 8.5 KB in all), far below amqplib's 64 KB for a header table.
  const headers: Record<string, unknown> = {
    [ERROR_HEADER]: bound(death.error.message, ERROR_TEXT_MAX_BYTES),
    [ATTEMPTS_HEADER]: death.attempts,
    [FAILED_AT_HEADER]: Date.now(),
  };
  if (death.error.name) headers[ERROR_NAME_HEADER] = bound(death.error.name, ERROR_NAME_MAX_BYTES);
  if (death.error.stack) {
    headers[ERROR_STACK_HEADER] = bound(death.error.stack, ERROR_TEXT_MAX_BYTES);
  }
  if (death.createdAt !== undefined) headers[CREATED_AT_HEADER] = death.createdAt;
  if (death.replay > 0) headers[REPLAY_HEADER] = death.replay;
  return publishConfirmed(ch, names.deadExchange, death.handler, death.body, {
    messageId: death.id,
    contentType: "application/json",
    headers,
  }, timeoutMs);
}

const decoder = new TextDecoder();

/** Reads a dead-letter message back. */
export function readDeadLetter(handler: string, message: Message): DeadLetter {
  const headers = message.properties.headers ?? {};
  const text = (name: string) => typeof headers[name] === "string" ? headers[name] : undefined;
  const number = (name: string) => {
    const value = Number(headers[name]);
    return Number.isFinite(value) ? value : null;
  };
  let payload: unknown;
  try {
    payload = JSON.parse(decoder.decode(message.content));
  } catch {
    payload = decoder.decode(message.content);
  }
  return {
    id: String(message.properties.messageId ?? ""),
    handler,
    payload,
    error: {
      message: text(ERROR_HEADER) ?? "unknown",
      name: text(ERROR_NAME_HEADER),
      stack: text(ERROR_STACK_HEADER),
    },
    attempts: number(ATTEMPTS_HEADER) ?? 0,
    replay: number(REPLAY_HEADER) ?? 0,
    createdAt: number(CREATED_AT_HEADER),
    failedAt: number(FAILED_AT_HEADER),
  };
}

/** What a replay did: the ids it put back on the task queue. */
export interface Replayed {
  ids: string[];
}

/**
 * Sends dead letters back to the handler's task queue with a fresh attempt count, the same id
 * and the replay count one higher: all of them (each once, even if it dies again meanwhile), or
 * only the one with `id`. Each is acked only after its republish was confirmed, so a failure
 * halfway loses nothing. `onReplayed` hears of each before the next is taken.
 *
 * No letter is ever given back with a nack: each would count a delivery, and from RabbitMQ 4.0 a
 * quorum queue drops a message past 20 of them. A letter passed over on the way to `id` is
 * published again at the back of the queue (confirmed) and then acked.
 */
export async function replayDeadLetters(
  ch: Channel,
  pub: ConfirmChannel,
  names: Topology,
  handler: string,
  options: { id?: string; timeoutMs: number; onReplayed(letter: DeadLetter): Promise<void> },
): Promise<Replayed> {
  const queue = names.deadQueue(handler);
  const { messageCount: known } = await ch.checkQueue(queue);
  const ids: string[] = [];
  // Only the letters there at the start: one replayed and dead again, or one passed over and put
  // at the back, must not be taken twice.
  for (let taken = 0; taken < known; taken++) {
    const message = await ch.get(queue, { noAck: false });
    if (!message) break;
    const letter = readDeadLetter(handler, message);
    if (options.id !== undefined && letter.id !== options.id) {
      await putBack(pub, names, handler, message, options.timeoutMs);
      ch.ack(message);
      continue;
    }
    await sendTask(
      pub,
      names,
      { id: letter.id, handler, body: message.content, createdAt: letter.createdAt ?? undefined },
      options.timeoutMs,
      { replay: letter.replay + 1 },
    );
    ch.ack(message);
    ids.push(letter.id);
    await options.onReplayed({ ...letter, replay: letter.replay + 1 });
    if (options.id !== undefined) break;
  }
  return { ids };
}

/** Publishes a dead letter again, as it is, at the back of its queue; waits for the confirm. */
function putBack(
  pub: ConfirmChannel,
  names: Topology,
  handler: string,
  message: GetMessage,
  timeoutMs: number,
): Promise<void> {
  // The broker's own counts belong to the old message, not to the new one.
  const { "x-delivery-count": _, "x-acquired-count": __, ...headers } =
    message.properties.headers ?? {};
  return publishConfirmed(pub, names.deadExchange, handler, message.content, {
    messageId: message.properties.messageId,
    contentType: message.properties.contentType,
    headers,
  }, timeoutMs);
}

/**
 * Empties a handler's dead-letter queue of the letters it held when asked; returns the ids of
 * the letters dropped (so the store can forget them too).
 */
export async function purgeDeadLetters(
  ch: Channel,
  names: Topology,
  handler: string,
): Promise<string[]> {
  const queue = names.deadQueue(handler);
  const { messageCount: known } = await ch.checkQueue(queue);
  const ids: string[] = [];
  for (let taken = 0; taken < known; taken++) {
    const message = await ch.get(queue, { noAck: true });
    if (!message) break;
    ids.push(String(message.properties.messageId ?? ""));
  }
  return ids;
}
