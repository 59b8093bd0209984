/**
 * The schemas of every body the HTTP API answers with, for its OpenAPI document. Objects Warren
 * shapes allow no other members, so a field added to an answer without its schema fails the
 * contract check of the test suite.
 *
 * @module
 */

import { TASK_STATES } from "../events.ts";
import { PERMISSION_KINDS } from "../permissions.ts";

const time = { type: ["string", "null"], format: "date-time" };
const count = { type: "integer", minimum: 0 };
const nullableCount = { type: ["integer", "null"], minimum: 0 };
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const object = (properties: Record<string, unknown>, optional: string[] = []) => ({
  type: "object",
  properties,
  required: Object.keys(properties).filter((key) => !optional.includes(key)),
  additionalProperties: false,
});

const links = object({ self: { type: "string" }, events: { type: "string" } });
const shortError = {
  oneOf: [
    { type: "null" },
    object({ name: { type: "string" }, message: { type: "string" } }, ["name"]),
  ],
};
const summary = {
  id: { type: "string" },
  handler: { type: "string" },
  state: { type: "string", enum: TASK_STATES },
  attempts: count,
  replays: count,
  error: shortError,
  created_at: time,
  started_at: time,
  finished_at: time,
  run_at: time,
  links,
};
const nextCursor = {
  type: ["string", "null"],
  description: "Pass as `?cursor=` for the next page.",
};
const { finished_at: _, ...deadLetter } = summary;

/** The schemas, by name, for `components.schemas`. */
export const SCHEMAS = {
  Problem: {
    type: "object",
    description: "RFC 9457 problem details.",
    properties: {
      type: { type: "string" },
      title: { type: "string" },
      status: { type: "integer" },
      detail: { type: "string" },
      errors: {
        type: "array",
        description: "For a 422: each way the payload breaks the handler's schema.",
        items: object({ pointer: { type: "string" }, message: { type: "string" } }),
      },
      reasons: {
        type: "array",
        description: "For /readyz: each reason it is not ready.",
        items: { type: "string" },
      },
    },
    required: ["type", "title", "status"],
  },
  TaskAccepted: object({
    id: { type: "string" },
    handler: { type: "string" },
    state: { const: "queued" },
    created_at: { type: "string", format: "date-time" },
    run_at: time,
    links,
  }),
  TaskSummary: object(summary),
  EventOrigin: object({ id: { type: "string" }, topic: { type: "string" } }),
  EventAccepted: object({
    id: { type: "string", description: "The event's id." },
    topic: { type: "string" },
    created_at: { type: "string", format: "date-time" },
    tasks: {
      type: "array",
      description: "One task per handler subscribed to the topic; empty when none is.",
      items: object({ handler: { type: "string" }, id: { type: "string" }, links }),
    },
  }),
  Task: object({
    ...summary,
    error: {
      oneOf: [
        { type: "null" },
        object(
          { name: { type: "string" }, message: { type: "string" }, stack: { type: "string" } },
          ["name", "stack"],
        ),
      ],
    },
    progress: {},
    payload: {},
    result: {},
    event: {
      description: "The event the task was made from (`POST /events/{topic}`), or null.",
      oneOf: [{ type: "null" }, ref("EventOrigin")],
    },
    trace_id: {
      type: ["string", "null"],
      description: "Its W3C trace id: every attempt's span is in this trace (null when unknown).",
    },
    files: {
      type: "array",
      description: "The files uploaded with it; `link` downloads one.",
      items: object({
        field: { type: "string" },
        filename: { type: "string" },
        type: { type: "string" },
        size: count,
        sha256: { type: "string" },
        link: { type: "string" },
      }),
    },
    history: {
      type: "array",
      description: "Every step: the states the task reached, each try of its callback " +
        "(`callback`, with the try's number as `attempt` and why it failed as `error`), and a " +
        "cancel asked while it ran (`cancel`).",
      items: object({
        state: { type: "string", enum: [...TASK_STATES, "callback", "cancel"] },
        attempt: count,
        replay: count,
        at: time,
        error: { type: ["string", "null"] },
      }),
    },
  }),
  TaskPage: object({
    tasks: { type: "array", items: ref("TaskSummary") },
    next_cursor: nextCursor,
  }),
  DeadLetter: object({ ...deadLetter, failed_at: time }),
  DeadPage: object({
    handler: { type: "string" },
    total: {
      ...nullableCount,
      description: "Letters in the queue; null while the broker is away.",
    },
    tasks: { type: "array", items: ref("DeadLetter") },
    next_cursor: nextCursor,
  }),
  Replayed: object({ replayed: count, ids: { type: "array", items: { type: "string" } } }),
  Purged: object({ purged: count }),
  Schedules: object({
    schedules: {
      type: "array",
      items: object({
        handler: { type: "string" },
        cron: { type: "string", description: "Five fields, or six with a second first." },
        timezone: { type: ["string", "null"], description: "IANA time zone; null for UTC." },
        payload: { description: "The payload of each of its tasks." },
        next_run: { ...time, description: "Its next tick." },
        last_run: {
          oneOf: [
            { type: "null" },
            object({
              at: { ...time, description: "The tick that made the task." },
              task_id: { type: "string" },
              missed: {
                ...count,
                description: "Missed ticks this one stood for (everything was down).",
              },
              sent: { type: "boolean", description: "Whether its task is in the broker." },
              links,
            }),
          ],
        },
      }),
    },
  }),
  Cancelled: object({
    handler: { type: "string" },
    cancelled: { ...count, description: "Tasks cancelled by this request." },
    more: {
      type: "boolean",
      description:
        "Whether waiting tasks are left (a request cancels at most 10,000): send it again.",
    },
  }),
  Handlers: object({
    handlers: {
      type: "array",
      items: object({
        name: { type: "string" },
        file: { type: "string", description: "Relative to the handlers folder." },
        config: object({
          workers: count,
          prefetch: count,
          timeout_ms: count,
          retries: count,
          backoff_ms: object({ min: count, max: count }),
          schema: { description: "The payload's JSON Schema, or null." },
          subscribe: {
            type: "array",
            description: "The topic patterns whose events it gets as tasks.",
            items: { type: "string" },
          },
          permissions: {
            ...object(Object.fromEntries(
              PERMISSION_KINDS.map((kind) => [kind, {
                oneOf: [{ type: "array", items: { type: "string" } }, { const: true }],
              }]),
            )),
            description: "What its Web Workers may do besides reaching the broker (Deno's " +
              "permissions: hosts, paths relative to the project, variables, programs); `true` " +
              "allows any, an empty list none.",
          },
        }),
        queue: object({ messages: nullableCount, consumers: nullableCount, dead: nullableCount }),
        workers: {
          description: "This process's workers of the handler; null where it runs none.",
          oneOf: [
            { type: "null" },
            object({
              running: count,
              consuming: count,
              restarts: count,
              crash_looping: { type: "boolean" },
              last_error: { type: ["string", "null"] },
            }),
          ],
        },
      }),
    },
  }),
  Status: object({ status: { type: "string", enum: ["ok", "ready"] } }),
};
