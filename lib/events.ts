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

/**
 * The states a task moves through; `succeeded` and `dead` are terminal (until a dead task is
 * replayed). `retrying` means an attempt failed and the next one waits for its backoff.
 */
export type TaskState = "queued" | "running" | "retrying" | "succeeded" | "dead";

/** All task states, in the order a task reaches them. */
export const TASK_STATES: readonly TaskState[] = [
  "queued",
  "running",
  "retrying",
  "succeeded",
  "dead",
];

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
  /** How many times the task was replayed from its dead letters before this run; absent for 0. */
  replay?: number;
  /** For `queued` and `retrying`: when the next attempt may start (ms since the epoch). */
  runAt?: number;
  /** When it happened, in ms since the epoch. */
  at: number;
  /** When the task was enqueued (ms since the epoch), when known. */
  createdAt?: number;
  /**
   * For an attempt's outcome (`retrying`, `succeeded`, `dead`): when its handler started, so the
   * store has the attempt's start even if its transient `running` event was lost.
   */
  startedAt?: number;
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

/** The wire form of events: a JSON array (one message may carry a batch). */
export function encodeEvents(events: TaskEvent[]): Uint8Array {
  return encoder.encode(JSON.stringify(events));
}

/**
 * Reads events off the wire: a JSON array of events, or a single event object. Returns
 * `undefined` when the bytes are not that.
 */
export function decodeEvents(bytes: Uint8Array): TaskEvent[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  const list = Array.isArray(value) ? value : [value];
  return list.every(isEvent) ? list : undefined;
}

function isEvent(value: unknown): value is TaskEvent {
  if (typeof value !== "object" || value === null) return false;
  const event = value as Partial<TaskEvent>;
  return (event.type === "progress" || TASK_STATES.includes(event.type as TaskState)) &&
    typeof event.id === "string" && typeof event.handler === "string" &&
    typeof event.attempt === "number" && typeof event.at === "number";
}

/**
 * Publishes a batch of events of one handler and one type as one message, and waits for the
 * broker's confirm.
 */
export function publishEvents(
  ch: ConfirmChannel,
  names: Topology,
  events: TaskEvent[],
  timeoutMs: number,
): Promise<void> {
  const { handler, type } = events[0];
  return publishConfirmed(
    ch,
    names.eventsExchange,
    eventRoutingKey(handler, type),
    encodeEvents(events),
    // "running" and "progress" are passing facts: kept in memory, they cost the broker a third
    // of a persistent message. The others are on disk before they are confirmed.
    {
      contentType: "application/json",
      type,
      persistent: type !== "running" && type !== "progress",
    },
    timeoutMs,
  );
}
