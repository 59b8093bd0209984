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
import { MAX_DEPTH, tooDeep } from "./payload.ts";

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
 * `undefined` when the bytes are not that, so nothing a foreign publisher sends can put into the
 * store what its readers cannot read back (a time no date can hold, JSON nested too deeply).
 */
export function decodeEvents(bytes: Uint8Array): TaskEvent[] | undefined {
  const text = decoder.decode(bytes);
  // An event nests its values two levels down in a batch (array, event, value).
  if (tooDeep(text, MAX_DEPTH + 2)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const list = Array.isArray(value) ? value : [value];
  return list.every(isEvent) ? list : undefined;
}

function isEvent(value: unknown): value is TaskEvent {
  if (typeof value !== "object" || value === null) return false;
  const event = value as Partial<TaskEvent>;
  const count = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
  const time = (n: unknown) => typeof n === "number" && Math.abs(n) <= TIME_MAX_MS;
  const maybe = (n: unknown, check: (n: unknown) => boolean) => n === undefined || check(n);
  return (event.type === "progress" || TASK_STATES.includes(event.type as TaskState)) &&
    typeof event.id === "string" && typeof event.handler === "string" &&
    count(event.attempt) && maybe(event.replay, count) && time(event.at) &&
    maybe(event.createdAt, time) && maybe(event.startedAt, time) && maybe(event.runAt, time) &&
    maybe(event.error, isError);
}

function isError(value: unknown): boolean {
  const error = value as Partial<TaskError> | null;
  return typeof error === "object" && error !== null && typeof error.message === "string";
}

/** The latest time a Date can hold, in ms since the epoch. */
const TIME_MAX_MS = 8.64e15;

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
