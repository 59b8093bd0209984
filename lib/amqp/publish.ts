/**
 * Confirmed publishing, and the messages Warren publishes with it: a task (new, retried,
 * replayed), a dead letter, a batch of lifecycle events, each routed by the topology and shaped
 * by the wire format. A publish resolves only when the broker has taken responsibility for the
 * message (publisher confirms), and fails after a deadline instead of waiting forever. The
 * channel's write buffer is bounded: past amqplib's high-water mark a publish waits for `drain`
 * (within the same deadline) rather than queueing without end.
 *
 * @module
 */

import type { ConfirmChannel, Options } from "amqplib";
import { Buffer } from "node:buffer";
import type { TaskEvent } from "../events.ts";
import type { FileInfo } from "../files.ts";
import {
  type CallbackDelivery,
  type CancelNote,
  deadLetterProperties,
  type Death,
  encodeCallback,
  encodeCancelNote,
  encodeEvents,
  eventProperties,
  type TaskMeta,
  taskProperties,
} from "../wire.ts";
import { coarseTimeout } from "../coarse_timer.ts";
import { CALLBACKS_ROUTE, delayRoute, eventRoutingKey, type Topology } from "./topology.ts";

/** Why a publish did not get the broker's confirm. */
export class PublishError extends Error {
  override name = "PublishError";
  /**
   * @param permanent Whether trying again cannot help: the message itself cannot be encoded
   * (a header table over amqplib's 64 KB buffer, a value of no AMQP type), as opposed to a
   * broker or network that may answer later.
   */
  constructor(message: string, readonly permanent = false) {
    super(message);
  }
}

const congested = new WeakMap<ConfirmChannel, Promise<void>>();

/**
 * Publishes a persistent message and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * declare const ch: import("amqplib").ConfirmChannel;
 * const body = new TextEncoder().encode('{"seconds":5}');
 * await publishConfirmed(ch, "warren.tasks", "countdown", body, { messageId: "t-1" }, 5_000);
 * ```
 */
export function publishConfirmed(
  ch: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Uint8Array,
  options: Options.Publish,
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimer();
      if (error) reject(error);
      else resolve();
    };
    const clearTimer = coarseTimeout(
      () => finish(new PublishError(`the broker did not confirm within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const send = () => {
      if (settled) return; // the deadline passed while waiting for drain: do not send late
      try {
        const content = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        const ok = ch.publish(exchange, routingKey, content, { persistent: true, ...options }, (
          error: unknown,
        ) =>
          finish(
            error ? new PublishError(`the broker did not take the message (${error})`) : undefined,
          ));
        if (!ok && !congested.has(ch)) {
          congested.set(
            ch,
            new Promise<void>((drained) =>
              ch.once("drain", () => {
                congested.delete(ch);
                drained();
              })
            ),
          );
        }
      } catch (error) {
        // amqplib throws RangeError or TypeError for a message it cannot encode, and
        // IllegalOperationError for a channel that closed meanwhile.
        const permanent = error instanceof RangeError || error instanceof TypeError;
        finish(new PublishError(`cannot publish: ${(error as Error).message}`, permanent));
      }
    };
    const wait = congested.get(ch);
    if (wait) wait.then(send);
    else send();
  });
}

/** A task to publish for the first time. */
export interface NewTask {
  id: string;
  handler: string;
  payload: unknown;
  createdAt: number;
  /** Where its callback goes when it ends, if anywhere. */
  callback?: string;
  /** The files uploaded with it. */
  files?: FileInfo[];
  /** Its W3C trace context (see `trace.ts`). */
  traceparent?: string;
}

/** A task as it travels: its payload already encoded (a retry or replay resends its bytes). */
export interface TaskMessage extends TaskMeta {
  handler: string;
  body: Uint8Array;
}

/** How a task is sent: when it may run, and which run of it this is. */
export interface SendOptions {
  /** Whole seconds to wait before it runs; 0 or absent for now. */
  delaySeconds?: number;
  /** Attempt number; default 1. */
  attempt?: number;
  /** Replays so far; default 0. */
  replay?: number;
  /**
   * Whether it was published before without a confirm (a copy may be in the broker): the worker
   * then asks its ledger before it runs it, as for a redelivery.
   */
  again?: boolean;
}

const encoder = new TextEncoder();

/**
 * Publishes a new task as a persistent JSON message and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * import { topology } from "./topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * const names = topology("warren");
 * const task = { id: "t-1", handler: "hello", payload: {}, createdAt: Date.now() };
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
  const body = encoder.encode(JSON.stringify(task.payload));
  return sendTask(ch, names, { ...task, body }, timeoutMs, options);
}

/**
 * Publishes an encoded task (a retry, a replay) to its queue, or into the delay cascade when it
 * must wait, and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * import { topology } from "./topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * const message = { id: "t-1", handler: "hello", body: new Uint8Array(), createdAt: undefined };
 * await sendTask(ch, topology("warren"), message, 5000, { delaySeconds: 2, attempt: 2 });
 * ```
 */
export function sendTask(
  ch: ConfirmChannel,
  names: Topology,
  task: TaskMessage,
  timeoutMs: number,
  options: SendOptions = {},
): Promise<void> {
  const { delaySeconds = 0, attempt = 1, replay = 0, again = false } = options;
  const route = delaySeconds > 0
    ? delayRoute(names, delaySeconds, task.handler)
    : { exchange: names.tasksExchange, routingKey: task.handler };
  const properties = taskProperties(task, { attempt, replay }, again);
  return publishConfirmed(ch, route.exchange, route.routingKey, task.body, properties, timeoutMs);
}

/** An event to publish: every handler subscribed to its topic gets a task of it. */
export interface NewEvent {
  id: string;
  topic: string;
  payload: unknown;
  createdAt: number;
  /** Whether the publisher records the tasks it makes (the api does; `ctx.publish` does not). */
  recorded: boolean;
  /** Where each task's callback goes when it ends, if anywhere. */
  callback?: string;
  /** Its W3C trace context, which each of its tasks carries. */
  traceparent?: string;
}

/**
 * Publishes an event on the topics exchange, routed by its topic, and waits for the broker's
 * confirm.
 *
 * @example
 * ```ts
 * import { topology } from "./topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * const event = {
 *   id: "e-1", topic: "order.created", payload: {}, createdAt: Date.now(), recorded: false,
 * };
 * await publishEvent(ch, topology("warren"), event, 5000);
 * ```
 */
export function publishEvent(
  ch: ConfirmChannel,
  names: Topology,
  event: NewEvent,
  timeoutMs: number,
): Promise<void> {
  const body = encoder.encode(JSON.stringify(event.payload));
  const properties = eventProperties(event, event.recorded);
  return publishConfirmed(ch, names.topicsExchange, event.topic, body, properties, timeoutMs);
}

/**
 * Puts a task into its handler's dead-letter queue, its body as delivered, and waits for the
 * broker's confirm.
 *
 * @example
 * ```ts
 * import { topology } from "./topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * const death = {
 *   id: "t-1", createdAt: undefined, attempt: 1, replay: 0, error: { message: "boom" },
 * };
 * await publishDeadLetter(ch, topology("warren"), "hello", new Uint8Array(), death, 5000);
 * ```
 */
export function publishDeadLetter(
  ch: ConfirmChannel,
  names: Topology,
  handler: string,
  body: Uint8Array,
  death: Death,
  timeoutMs: number,
): Promise<void> {
  const properties = deadLetterProperties(death, Date.now());
  return publishConfirmed(ch, names.deadExchange, handler, body, properties, timeoutMs);
}

/**
 * Publishes a batch of events of one handler and one type as one message, and waits for the
 * broker's confirm.
 *
 * @example
 * ```ts
 * import { topology } from "./topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * await publishEvents(ch, topology("warren"), [
 *   { type: "succeeded", id: "t-1", handler: "hello", attempt: 1, at: Date.now() },
 * ], 5000);
 * ```
 */
export function publishEvents(
  ch: ConfirmChannel,
  names: Topology,
  events: TaskEvent[],
  timeoutMs: number,
): Promise<void> {
  const { handler, type } = events[0];
  const { body, properties } = encodeEvents(events);
  const key = eventRoutingKey(handler, type);
  return publishConfirmed(ch, names.eventsExchange, key, body, properties, timeoutMs);
}

/**
 * Puts a callback delivery on the callbacks queue (through the delay cascade when it must wait)
 * and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * import { topology } from "./topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * const delivery = {
 *   webhookId: "t-1.0", url: "https://example.com/hook", taskId: "t-1", handler: "hello",
 *   replay: 0, body: "{}", attempt: 1,
 * };
 * await publishCallback(ch, topology("warren"), delivery, 0, 5000);
 * ```
 */
export function publishCallback(
  ch: ConfirmChannel,
  names: Topology,
  delivery: CallbackDelivery,
  delaySeconds: number,
  timeoutMs: number,
): Promise<void> {
  const { body, properties } = encodeCallback(delivery);
  const route = delaySeconds > 0
    ? delayRoute(names, delaySeconds, CALLBACKS_ROUTE)
    : { exchange: "", routingKey: names.callbacksQueue };
  return publishConfirmed(ch, route.exchange, route.routingKey, body, properties, timeoutMs);
}

/**
 * Appends a cancel note to the cancels stream and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * import { topology } from "./topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * await publishCancelNote(ch, topology("warren"), { kind: "cancel", ids: ["t-1"], at: Date.now() }, 5000);
 * ```
 */
export function publishCancelNote(
  ch: ConfirmChannel,
  names: Topology,
  note: CancelNote,
  timeoutMs: number,
): Promise<void> {
  const { body, properties } = encodeCancelNote(note);
  return publishConfirmed(ch, "", names.cancelsStream, body, properties, timeoutMs);
}
