/**
 * A task as a worker holds it while it runs one attempt: what its message says, where its ack
 * goes, and the events it reports, which every step of its life builds the same way.
 *
 * @module
 */

import type { Message } from "amqplib";
import { isTerminal, type TaskEvent, type TaskState } from "../events.ts";
import { newTaskId } from "../id.ts";
import type { Logger } from "../log.ts";
import type { TaskMessage } from "../amqp/publish.ts";
import { readTask, type TaskFacts } from "../wire.ts";
import { traceIdOf } from "../trace.ts";
import { runKey } from "./ledger.ts";

/** A delivery being worked on. */
export interface Task extends TaskFacts {
  /** The handler it runs. */
  handler: string;
  /** The ledger's name for this attempt (see `ledger.ts`). */
  key: string;
  /** The payload as delivered. */
  body: Uint8Array;
  /** Whether the broker delivered this message before. */
  redelivered: boolean;
  /** Acks the delivery on the channel that delivered it (left alone if that channel died). */
  ack(): void;
  log: Logger;
  /** When the handler was called (ms since the epoch); undefined until then. */
  startedAt: number | undefined;
  /** The trace context of this attempt's span, once it started: what a retry links to. */
  attemptTraceparent?: string;
}

/** Where a worker's deliveries come from, and what its handler's config adds to them. */
export interface Route {
  handler: string;
  /** The exchange events come from (see `readTask`). */
  topicsExchange: string;
  /** The handler's default callback URL, for a task that names none. */
  callback?: string;
}

/**
 * The task a delivery carries.
 *
 * @example
 * ```ts
 * declare const delivery: import("amqplib").Message;
 * declare const log: import("../log.ts").Logger;
 * const task = taskOf(delivery, { handler: "hello", topicsExchange: "warren.topics" }, () => {}, log);
 * task.key; // "<id>/0/1"
 * ```
 */
export function taskOf(delivery: Message, route: Route, ack: () => void, log: Logger): Task {
  const { handler, topicsExchange } = route;
  const facts = readTask(delivery, { handler, topicsExchange, newId: newTaskId });
  const callback = facts.callback ?? route.callback;
  return {
    ...facts,
    ...(callback ? { callback } : {}),
    handler,
    key: runKey(facts.id, facts.replay, facts.attempt),
    body: delivery.content,
    redelivered: delivery.fields.redelivered,
    ack,
    log: log.with({ taskId: facts.id, attempt: facts.attempt }),
    startedAt: undefined,
  };
}

/**
 * Whether a delivery may repeat an attempt this process saw: a redelivery, a retry or replay
 * (published again after a confirm timeout), or a task a producer published again because its
 * first publish went unconfirmed (a schedule's tick taken over, an idempotency key's lease). A
 * fresh first attempt cannot.
 */
export function mayRepeat(task: Task): boolean {
  return task.redelivered || task.again === true || task.attempt > 1 || task.replay > 0;
}

/**
 * An event of this attempt, with the facts every one of them carries: an outcome also carries
 * when its handler started, and a task no Warren producer recorded the event it was made from.
 *
 * @example
 * ```ts
 * declare const task: Task;
 * eventOf(task, "succeeded", { result: { ok: true } });
 * ```
 */
export function eventOf(
  task: Task,
  type: TaskEvent["type"],
  more: Partial<TaskEvent> = {},
): TaskEvent {
  const event: TaskEvent = {
    type,
    id: task.id,
    handler: task.handler,
    attempt: task.attempt,
    at: Date.now(),
    createdAt: task.createdAt,
    ...more,
  };
  if (task.replay > 0) event.replay = task.replay;
  // Each event may be the store's first of its task (another client's, ctx.publish's, and even
  // one the api recorded, when the worker's events reach the store before the api's "queued"),
  // so each says which event made it: the task counts as made by an event from its first step.
  if (task.event) event.event = task.event;
  if (task.traceparent && !task.fromWarren) event.traceId = traceIdOf(task.traceparent);
  // Its end tells the recorder where the callback goes; a retry tells the store, for a cancel.
  if (task.callback && (isTerminal(type as TaskState) || type === "retrying")) {
    event.callback = task.callback;
  }
  if (task.startedAt !== undefined && type !== "running" && type !== "progress") {
    event.startedAt = task.startedAt;
  }
  return event;
}

/** The task as it is sent again (a retry, a dead letter): its body as delivered. */
export function messageOf(task: Task): TaskMessage {
  const message: TaskMessage = {
    id: task.id,
    handler: task.handler,
    body: task.body,
    createdAt: task.createdAt,
  };
  if (task.event) message.event = task.event;
  if (task.callback) message.callback = task.callback;
  if (task.files) message.files = task.files;
  if (task.traceparent) message.traceparent = task.traceparent;
  if (task.attemptTraceparent) message.previousAttempt = task.attemptTraceparent;
  return message;
}
