/**
 * The wire format, in one place: what the messages Warren publishes carry, and how it reads them
 * back, whoever sent them. It matches the README's "Wire format" section; any AMQP client may
 * produce tasks by it. Where messages are routed is `amqp/topology.ts`; publishing them is
 * `amqp/publish.ts`.
 *
 * A **task** is its payload as JSON in the body, and:
 *
 * | property or header | value |
 * |---|---|
 * | `message_id` | the task id |
 * | `timestamp` | when it was enqueued, in seconds |
 * | `x-warren-attempt` | the attempt it is, `1` when absent |
 * | `x-warren-replay` | replays of the dead task so far, `0` when absent |
 * | `x-warren-created-at` | when it was enqueued, in ms; set by Warren's producers, which record the task first |
 * | `x-warren-event-id`, `x-warren-topic` | the event it was made from, on its retries and replays |
 * | `x-warren-callback` | the URL its callback goes to when it ends (`Callback-Url`) |
 * | `x-warren-files` | its uploaded files, a JSON array of `FileInfo` (see `files.ts`) |
 * | `traceparent` | its W3C trace context: the span that enqueued it (every attempt's span is its child) |
 * | `x-warren-previous-attempt` | on a retry: the `traceparent` of the attempt before, which its span links to |
 * | `x-warren-again` | `1`: published again after its first publish went unconfirmed, so a copy may be in the broker already |
 *
 * An **event** (on `<prefix>.topics`, routed by its topic) is its payload as JSON in the body,
 * with `message_id` its id (the tasks it makes take theirs from it: see `eventTaskId`) and the
 * task properties' `timestamp` and `x-warren-created-at`. Each subscribed handler's queue holds a
 * copy; the worker reads the task's id and event from where it came.
 *
 * A **dead letter** is the task's body as delivered, with the task's properties and:
 *
 * | header | value |
 * |---|---|
 * | `x-warren-error` | the last error's message (at most 4 KB) |
 * | `x-warren-error-name` | its name, e.g. `TypeError` (at most 256 bytes) |
 * | `x-warren-error-stack` | its stack (at most 4 KB) |
 * | `x-warren-attempts` | attempts made |
 * | `x-warren-failed-at` | when the last attempt failed, ms since the epoch |
 *
 * A **cancel** (on the stream `<prefix>.cancels`) is `{"ids": [...], "at": <ms>}` with the type
 * `cancel`: the tasks no worker may run any more. A reader marks where it caught up with a
 * message of type `mark` whose `message_id` is its own.
 *
 * **Lifecycle events** are a JSON array of {@linkcode TaskEvent}s of one handler and one type
 * (one object alone is read too), with the type as the message's `type`; `running` and
 * `progress` are transient, the others persistent.
 *
 * @module
 */

import type { Message, Options } from "amqplib";
import {
  type EventOrigin,
  type EventType,
  TASK_STATES,
  type TaskError,
  type TaskEvent,
  type TaskState,
} from "./events.ts";
import { eventTaskId } from "./id.ts";
import { isTraceparent } from "./trace.ts";
import { type FileInfo, readFileInfos } from "./files.ts";
import { MAX_DEPTH, tooDeep } from "./payload.ts";
import { bound, ERROR_NAME_MAX_BYTES, ERROR_TEXT_MAX_BYTES } from "./task_error.ts";

const ATTEMPT_HEADER = "x-warren-attempt";
const CREATED_AT_HEADER = "x-warren-created-at";
const REPLAY_HEADER = "x-warren-replay";
const ERROR_HEADER = "x-warren-error";
const ERROR_NAME_HEADER = "x-warren-error-name";
const ERROR_STACK_HEADER = "x-warren-error-stack";
const ATTEMPTS_HEADER = "x-warren-attempts";
const FAILED_AT_HEADER = "x-warren-failed-at";
const EVENT_ID_HEADER = "x-warren-event-id";
const TOPIC_HEADER = "x-warren-topic";
const CALLBACK_HEADER = "x-warren-callback";
const FILES_HEADER = "x-warren-files";
const AGAIN_HEADER = "x-warren-again";
const TRACEPARENT_HEADER = "traceparent";
const PREVIOUS_ATTEMPT_HEADER = "x-warren-previous-attempt";
const TASK_HEADER = "x-warren-task";
const HANDLER_HEADER = "x-warren-handler";
/** Counts the broker itself keeps on a message (quorum queues): never copied to a new one. */
const BROKER_HEADERS = ["x-delivery-count", "x-acquired-count"];

/** The largest attempt or replay count a message may claim; larger ones are ignored. */
const COUNT_MAX = 1_000_000;
/** The latest time a Date can hold (ms since the epoch); a later one is not a time. */
const TIME_MAX_MS = 8.64e15;

/** Which run of a task a message is: its attempt, and its replays so far. */
export interface Run {
  /** 1 for the first attempt. */
  attempt: number;
  /** Replays from the dead letters so far. */
  replay: number;
}

/** What a task message says of its task besides its payload and its run (see the table above). */
export interface TaskMeta {
  /** Its id (`message_id`). */
  id: string;
  /** When it was enqueued (ms), when its producer recorded it. */
  createdAt: number | undefined;
  /** The event it was made from, if any: its retries and replays carry it on. */
  event?: EventOrigin;
  /** Where its callback goes, if anywhere: its retries and replays carry it on. */
  callback?: string;
  /** Its uploaded files: its retries and replays carry them on. */
  files?: FileInfo[];
  /** Its W3C trace context: its retries and replays carry it on. */
  traceparent?: string;
  /** On a retry: the trace context of the attempt before. */
  previousAttempt?: string;
}

/**
 * The properties of a task message.
 *
 * @example
 * ```ts
 * const props = taskProperties({ id: "t-1", createdAt: Date.now() }, { attempt: 2, replay: 0 });
 * taskProperties({ id: "t-1", createdAt: 1 }, { attempt: 1, replay: 0 }, true); // marked again
 * props.headers; // { "x-warren-attempt": 2, "x-warren-created-at": … }
 * ```
 */
export function taskProperties(task: TaskMeta, run: Run, again = false): Options.Publish {
  // A first attempt says nothing: a header less to encode on every new task.
  const headers: Record<string, unknown> = run.attempt === 1
    ? {}
    : { [ATTEMPT_HEADER]: run.attempt };
  if (again) headers[AGAIN_HEADER] = 1;
  if (task.createdAt !== undefined) headers[CREATED_AT_HEADER] = task.createdAt;
  if (run.replay > 0) headers[REPLAY_HEADER] = run.replay;
  if (task.event) {
    headers[EVENT_ID_HEADER] = task.event.id;
    headers[TOPIC_HEADER] = task.event.topic;
  }
  if (task.callback) headers[CALLBACK_HEADER] = task.callback;
  if (task.files?.length) headers[FILES_HEADER] = JSON.stringify(task.files);
  if (task.traceparent) headers[TRACEPARENT_HEADER] = task.traceparent;
  if (task.previousAttempt) headers[PREVIOUS_ATTEMPT_HEADER] = task.previousAttempt;
  return {
    messageId: task.id,
    contentType: "application/json",
    timestamp: Math.floor((task.createdAt ?? Date.now()) / 1000),
    headers,
  };
}

/**
 * The properties of an event on the topics exchange. `recorded` says that its publisher recorded
 * the tasks it makes (as the api does), so their workers need not report the payload.
 *
 * @example
 * ```ts
 * eventProperties({ id: "e-1", createdAt: Date.now() }, true).messageId; // "e-1"
 * ```
 */
export function eventProperties(
  event: { id: string; createdAt: number; callback?: string; traceparent?: string },
  recorded: boolean,
): Options.Publish {
  const task = {
    id: event.id,
    createdAt: recorded ? event.createdAt : undefined,
    callback: event.callback,
    traceparent: event.traceparent,
  };
  return {
    ...taskProperties(task, { attempt: 1, replay: 0 }),
    timestamp: Math.floor(event.createdAt / 1000),
  };
}

/** What a task message says about its task. */
export interface TaskFacts extends Run {
  /** The task id; made up for a message without `message_id` (another AMQP client's). */
  id: string;
  /** When it was enqueued (ms since the epoch): as the message says, or when first seen. */
  createdAt: number;
  /**
   * Whether a Warren producer sent it: those record the task (payload, creation time) before
   * publishing, so the worker's events need not carry them.
   */
  fromWarren: boolean;
  /** Earlier deliveries of this message that ended without an ack (quorum queues count them). */
  deliveries: number;
  /** The event the task was made from, if a subscription made it. */
  event?: EventOrigin;
  /** Where its callback goes when it ends, if the message names one. */
  callback?: string;
  /** The files uploaded with it, if any. */
  files?: FileInfo[];
  /** Published again after an unconfirmed publish: a copy of it may have come before. */
  again?: boolean;
  /** Its W3C trace context: the span that enqueued it. */
  traceparent?: string;
  /** On a retry: the trace context of the attempt before. */
  previousAttempt?: string;
}

/** Who reads a task message: the handler whose queue it came from, and where events come from. */
export interface Reader {
  handler: string;
  /** The exchange events are published on; a copy of one is read as its task for `handler`. */
  topicsExchange: string;
  /** Makes up an id for a message without `message_id`. */
  newId(): string;
}

/**
 * Reads a task message, from any producer: a header it cannot use is ignored.
 *
 * @example
 * ```ts
 * declare const message: import("amqplib").Message;
 * const { id, attempt, replay } = readTask(message, {
 *   handler: "hello",
 *   topicsExchange: "warren.topics",
 *   newId: () => crypto.randomUUID(),
 * });
 * ```
 */
export function readTask(message: Message, reader: Reader): TaskFacts {
  const props = message.properties;
  const headers = props.headers ?? {};
  const createdAtHeader = positiveInteger(headers[CREATED_AT_HEADER], TIME_MAX_MS);
  const timestamp = positiveInteger(props.timestamp, TIME_MAX_MS / 1000);
  const messageId = typeof props.messageId === "string" && props.messageId
    ? props.messageId
    : reader.newId();
  const event = eventOf(message, messageId, reader);
  return {
    id: event && message.fields.exchange === reader.topicsExchange
      ? eventTaskId(event.id, reader.handler)
      : messageId,
    ...(event ? { event } : {}),
    ...(typeof headers[CALLBACK_HEADER] === "string" ? { callback: headers[CALLBACK_HEADER] } : {}),
    ...filesOf(headers[FILES_HEADER]),
    ...(positiveInteger(headers[AGAIN_HEADER], 1) ? { again: true } : {}),
    ...(isTraceparent(headers[TRACEPARENT_HEADER])
      ? { traceparent: headers[TRACEPARENT_HEADER] }
      : {}),
    ...(isTraceparent(headers[PREVIOUS_ATTEMPT_HEADER])
      ? { previousAttempt: headers[PREVIOUS_ATTEMPT_HEADER] }
      : {}),
    attempt: positiveInteger(headers[ATTEMPT_HEADER], COUNT_MAX) ?? 1,
    replay: positiveInteger(headers[REPLAY_HEADER], COUNT_MAX) ?? 0,
    // A message that does not say when it was enqueued was enqueued by now at the latest.
    createdAt: createdAtHeader ?? (timestamp === undefined ? Date.now() : timestamp * 1000),
    fromWarren: createdAtHeader !== undefined,
    deliveries: positiveInteger(headers["x-delivery-count"], Number.MAX_SAFE_INTEGER) ?? 0,
  };
}

/**
 * The event a task message comes from: itself, when it is a copy of one from the topics exchange
 * (whose `message_id` is the event's); else what its headers say (a retry, a replay).
 */
function eventOf(message: Message, messageId: string, reader: Reader): EventOrigin | undefined {
  if (message.fields.exchange === reader.topicsExchange) {
    return { id: messageId, topic: message.fields.routingKey };
  }
  const headers = message.properties.headers ?? {};
  const id = headers[EVENT_ID_HEADER];
  const topic = headers[TOPIC_HEADER];
  return typeof id === "string" && typeof topic === "string" ? { id, topic } : undefined;
}

function filesOf(header: unknown): { files?: FileInfo[] } {
  const files = readFileInfos(header);
  return files?.length ? { files } : {};
}

/** What a worker knows of a task when it dies. */
export interface Death extends Run {
  id: string;
  createdAt: number | undefined;
  error: TaskError;
  event?: EventOrigin;
  callback?: string;
  files?: FileInfo[];
  traceparent?: string;
}

/**
 * The properties of a dead letter. Each text is bounded (about 8.5 KB in all), far below
 * amqplib's 64 KB for a header table.
 *
 * @example
 * ```ts
 * deadLetterProperties({
 *   id: "t-1", createdAt: undefined, attempt: 3, replay: 0, error: { message: "boom" },
 * }, Date.now()).headers; // { "x-warren-error": "boom", "x-warren-attempts": 3, … }
 * ```
 */
export function deadLetterProperties(death: Death, failedAt: number): Options.Publish {
  const props = taskProperties(death, { attempt: death.attempt, replay: death.replay });
  const headers: Record<string, unknown> = {
    ...props.headers,
    [ERROR_HEADER]: bound(death.error.message, ERROR_TEXT_MAX_BYTES),
    [ATTEMPTS_HEADER]: death.attempt,
    [FAILED_AT_HEADER]: failedAt,
  };
  delete headers[ATTEMPT_HEADER]; // a dead letter counts attempts made, not the next one
  if (death.error.name) headers[ERROR_NAME_HEADER] = bound(death.error.name, ERROR_NAME_MAX_BYTES);
  if (death.error.stack) {
    headers[ERROR_STACK_HEADER] = bound(death.error.stack, ERROR_TEXT_MAX_BYTES);
  }
  return { ...props, headers };
}

/** What a replay needs of a dead letter. */
export interface DeadLetter {
  id: string;
  /** Replays before this death. */
  replay: number;
  createdAt: number | undefined;
}

/**
 * Reads a dead letter back.
 *
 * @example
 * ```ts
 * declare const message: import("amqplib").Message;
 * const { id, replay } = readDeadLetter(message);
 * ```
 */
export function readDeadLetter(message: Message): DeadLetter {
  const headers = message.properties.headers ?? {};
  return {
    id: String(message.properties.messageId ?? ""),
    replay: positiveInteger(headers[REPLAY_HEADER], COUNT_MAX) ?? 0,
    createdAt: positiveInteger(headers[CREATED_AT_HEADER], TIME_MAX_MS),
  };
}

/**
 * The properties a message keeps when it is published again as a new message (a dead letter put
 * back at the end of its queue): its own, without the counts the broker kept on the old one.
 */
export function republishedProperties(message: Message): Options.Publish {
  const headers = { ...message.properties.headers };
  for (const name of BROKER_HEADERS) delete headers[name];
  return {
    messageId: message.properties.messageId,
    contentType: message.properties.contentType,
    timestamp: message.properties.timestamp,
    headers,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The wire form of a batch of events of one handler and one type, and its properties.
 *
 * @example
 * ```ts
 * const { body, properties } = encodeEvents([
 *   { type: "succeeded", id: "t-1", handler: "hello", attempt: 1, at: Date.now() },
 * ]);
 * ```
 */
export function encodeEvents(
  events: TaskEvent[],
): { body: Uint8Array; properties: Options.Publish } {
  const type = events[0].type;
  return {
    body: encoder.encode(JSON.stringify(events)),
    // "running" and "progress" are passing facts: kept in memory, they cost the broker a third
    // of a persistent message. The others are on disk before they are confirmed.
    properties: {
      contentType: "application/json",
      type,
      persistent: type !== "running" && type !== "progress",
    },
  };
}

/**
 * Reads events off the wire: a JSON array of events, or a single event object. Returns
 * `undefined` when the bytes are not that, so nothing a foreign publisher sends can put into the
 * store what its readers cannot read back (a time no date can hold, JSON nested too deeply).
 *
 * @example
 * ```ts
 * decodeEvents(new TextEncoder().encode("[]")); // []
 * decodeEvents(new TextEncoder().encode("{oops")); // undefined
 * ```
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
  return isEventType(event.type) &&
    typeof event.id === "string" && typeof event.handler === "string" &&
    count(event.attempt) && maybe(event.replay, count) && time(event.at) &&
    maybe(event.createdAt, time) && maybe(event.startedAt, time) && maybe(event.runAt, time) &&
    maybe(event.error, isError) && maybe(event.event, isOrigin);
}

function isOrigin(value: unknown): boolean {
  const origin = value as Partial<EventOrigin> | null;
  return typeof origin === "object" && origin !== null && typeof origin.id === "string" &&
    typeof origin.topic === "string";
}

function isEventType(type: unknown): type is EventType {
  return type === "progress" || type === "callback" || type === "cancel" ||
    TASK_STATES.includes(type as TaskState);
}

function isError(value: unknown): boolean {
  const error = value as Partial<TaskError> | null;
  return typeof error === "object" && error !== null && typeof error.message === "string";
}

/** A whole number from 1 to `max` read from a header, or undefined: any producer may set it. */
function positiveInteger(value: unknown, max: number): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isInteger(n) && n > 0 && n <= max ? n : undefined;
}

/** One delivery of a task's callback: where, what (the exact body to sign), and which try. */
export interface CallbackDelivery {
  /** The Standard Webhooks message id: `<task id>.<replay>`, the same on every try. */
  webhookId: string;
  url: string;
  taskId: string;
  handler: string;
  replay: number;
  /** The task's JSON, as it is POSTed. */
  body: string;
  /** 1 for the first try. */
  attempt: number;
}

/**
 * A callback delivery as a message on `<prefix>.callbacks`: the body is what is POSTed, the
 * rest is in its properties.
 *
 * @example
 * ```ts
 * const { body, properties } = encodeCallback({
 *   webhookId: "t-1.0", url: "https://example.com/hook", taskId: "t-1", handler: "hello",
 *   replay: 0, body: '{"id":"t-1"}', attempt: 1,
 * });
 * ```
 */
export function encodeCallback(
  delivery: CallbackDelivery,
): { body: Uint8Array; properties: Options.Publish } {
  return {
    body: encoder.encode(delivery.body),
    properties: {
      messageId: delivery.webhookId,
      contentType: "application/json",
      persistent: true,
      headers: {
        [CALLBACK_HEADER]: delivery.url,
        [TASK_HEADER]: delivery.taskId,
        [HANDLER_HEADER]: delivery.handler,
        [REPLAY_HEADER]: delivery.replay,
        [ATTEMPT_HEADER]: delivery.attempt,
      },
    },
  };
}

/**
 * Reads a callback delivery back; undefined for a message that is not one.
 *
 * @example
 * ```ts
 * declare const message: import("amqplib").Message;
 * const delivery = decodeCallback(message);
 * ```
 */
export function decodeCallback(message: Message): CallbackDelivery | undefined {
  const headers = message.properties.headers ?? {};
  const [url, taskId, handler] = [
    headers[CALLBACK_HEADER],
    headers[TASK_HEADER],
    headers[HANDLER_HEADER],
  ];
  const webhookId = message.properties.messageId;
  if (
    typeof url !== "string" || typeof taskId !== "string" || typeof handler !== "string" ||
    typeof webhookId !== "string"
  ) return undefined;
  return {
    webhookId,
    url,
    taskId,
    handler,
    replay: positiveInteger(headers[REPLAY_HEADER], COUNT_MAX) ?? 0,
    body: decoder.decode(message.content),
    attempt: positiveInteger(headers[ATTEMPT_HEADER], COUNT_MAX) ?? 1,
  };
}

/** A message of the cancels stream: tasks cancelled, or a reader's mark of where it caught up. */
export type CancelNote =
  | { kind: "cancel"; ids: string[]; at: number }
  | { kind: "mark"; mark: string };

/**
 * A cancel note as a message of the cancels stream.
 *
 * @example
 * ```ts
 * const { body, properties } = encodeCancelNote({ kind: "cancel", ids: ["t-1"], at: Date.now() });
 * ```
 */
export function encodeCancelNote(
  note: CancelNote,
): { body: Uint8Array; properties: Options.Publish } {
  if (note.kind === "mark") {
    return { body: new Uint8Array(), properties: { type: "mark", messageId: note.mark } };
  }
  return {
    body: encoder.encode(JSON.stringify({ ids: note.ids, at: note.at })),
    properties: { type: "cancel", contentType: "application/json", persistent: true },
  };
}

/**
 * Reads a message of the cancels stream; undefined for one that is neither a cancel nor a mark.
 *
 * @example
 * ```ts
 * declare const message: import("amqplib").Message;
 * const note = decodeCancelNote(message);
 * if (note?.kind === "cancel") console.log(note.ids);
 * ```
 */
export function decodeCancelNote(message: Message): CancelNote | undefined {
  const { type, messageId } = message.properties;
  if (type === "mark") {
    return typeof messageId === "string" ? { kind: "mark", mark: messageId } : undefined;
  }
  if (type !== "cancel") return undefined;
  try {
    const { ids, at } = JSON.parse(decoder.decode(message.content));
    const valid = Array.isArray(ids) && ids.every((id) => typeof id === "string") &&
      typeof at === "number" && Math.abs(at) <= TIME_MAX_MS;
    return valid ? { kind: "cancel", ids, at } : undefined;
  } catch {
    return undefined;
  }
}
