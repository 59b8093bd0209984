/**
 * Lifecycle events: what workers report about a task on the events exchange, and what the api
 * reads back into the task store and out to live watchers. The wire form is a JSON object, one
 * per message, routed as `task.<handler>.<type>`.
 *
 * @module
 */

import type { ConfirmChannel } from "amqplib";
import { eventRoutingKey, type Topology } from "./amqp/topology.ts";
import { publishConfirmed } from "./amqp/publish.ts";

/** The states a task moves through; `succeeded` and `dead` are terminal. */
export type TaskState = "queued" | "running" | "succeeded" | "dead";

/** All task states, in the order a task reaches them. */
export const TASK_STATES: readonly TaskState[] = ["queued", "running", "succeeded", "dead"];

/** What an event reports: a state change, or progress within the running state. */
export type EventType = TaskState | "progress";

/** A failure, as recorded on a dead task. */
export interface TaskError {
  message: string;
  name?: string;
  stack?: string;
}

/** One lifecycle event of one task. */
export interface TaskEvent {
  type: EventType;
  id: string;
  handler: string;
  /** The attempt this event belongs to; 0 for `queued`. */
  attempt: number;
  /** When it happened, in ms since the epoch. */
  at: number;
  /** When the task was enqueued (ms since the epoch), when known. */
  createdAt?: number;
  payload?: unknown;
  result?: unknown;
  error?: TaskError;
  progress?: unknown;
}

/** Whether a state is final. */
export function isTerminal(state: TaskState): boolean {
  return state === "succeeded" || state === "dead";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The wire form of an event. */
export function encodeEvent(event: TaskEvent): Uint8Array {
  return encoder.encode(JSON.stringify(event));
}

/** Reads an event off the wire; `undefined` when the bytes are not one. */
export function decodeEvent(bytes: Uint8Array): TaskEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const event = value as Partial<TaskEvent>;
  const typeOk = event.type === "progress" || TASK_STATES.includes(event.type as TaskState);
  if (
    !typeOk || typeof event.id !== "string" || typeof event.handler !== "string" ||
    typeof event.attempt !== "number" || typeof event.at !== "number"
  ) {
    return undefined;
  }
  return event as TaskEvent;
}

/** Publishes an event and waits for the broker's confirm. */
export function publishEvent(
  ch: ConfirmChannel,
  names: Topology,
  event: TaskEvent,
  timeoutMs: number,
): Promise<void> {
  return publishConfirmed(
    ch,
    names.eventsExchange,
    eventRoutingKey(event.handler, event.type),
    encodeEvent(event),
    { contentType: "application/json", type: event.type, messageId: event.id },
    timeoutMs,
  );
}
