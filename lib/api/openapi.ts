/**
 * The OpenAPI 3.1 document of the HTTP API (GET /openapi.json): every route, and for each
 * handler its own enqueue route whose request body is that handler's payload schema.
 *
 * @module
 */

import type { HandlerInfo } from "../handler.ts";
import { TASK_STATES } from "../events.ts";

type Json = Record<string, unknown>;

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});
const jsonResponse = (description: string, ref: string) => ({
  description,
  content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } },
});
const limitParam = {
  name: "limit",
  in: "query",
  description: "Most items returned.",
  schema: { type: "integer", minimum: 1, maximum: 1000, default: 50 },
};
const nameParam = {
  name: "name",
  in: "path",
  required: true,
  description: "The handler's name.",
  schema: { type: "string" },
};

/**
 * Builds the document for `handlers`; with `secured`, every route but the public ones requires
 * the bearer token.
 *
 * @example
 * ```ts
 * const doc = openApiDocument(handlers, { secured: true, version: "0.1.0" });
 * doc.paths["/tasks/hello"].post.requestBody; // the hello handler's schema
 * ```
 */
export function openApiDocument(
  handlers: HandlerInfo[],
  options: { secured: boolean; version: string },
): Json & { paths: Record<string, Json> } {
  const paths: Record<string, Json> = {};
  const open = { security: [] };

  for (const h of handlers) {
    paths[`/tasks/${h.name}`] = {
      post: {
        tags: ["tasks"],
        operationId: `enqueue_${h.name.replaceAll("-", "_")}`,
        summary: `Enqueue a ${h.name} task`,
        description: `Runs \`handlers/${h.file.split("/").at(-1)}\` with the body as payload ` +
          `(timeout ${h.config.timeoutMs} ms, ${h.config.retries} retries). The 202 comes only ` +
          "after the broker confirmed the task.",
        parameters: [{
          name: "delay",
          in: "query",
          description: "Run no earlier than this: seconds (`90`) or a duration (`90s`, `2h`); " +
            "at most 30 days.",
          schema: { type: "string" },
        }],
        requestBody: {
          required: false,
          content: {
            "application/json": h.config.schema === undefined
              ? { schema: {}, example: {} } // any JSON; an object is the usual payload
              : { schema: h.config.schema },
          },
        },
        responses: {
          202: jsonResponse("Accepted: the broker has the task.", "TaskAccepted"),
          400: problemResponse("The body is not JSON, or a query parameter is bad."),
          413: problemResponse("The body is too large."),
          422: problemResponse("The payload does not match the handler's schema."),
          429: problemResponse("Too many tasks await the broker's confirm; retry after a moment."),
          503: problemResponse("The broker is unavailable; nothing was enqueued."),
        },
      },
    };
  }

  paths["/tasks"] = {
    get: {
      tags: ["tasks"],
      operationId: "list_tasks",
      summary: "Recent tasks, newest first",
      parameters: [
        { name: "handler", in: "query", schema: { type: "string" } },
        { name: "state", in: "query", schema: { type: "string", enum: TASK_STATES } },
        limitParam,
      ],
      responses: {
        200: {
          description: "The tasks.",
          content: {
            "application/json": {
              schema: {
                type: "object",
                properties: {
                  tasks: { type: "array", items: { $ref: "#/components/schemas/Task" } },
                },
              },
            },
          },
        },
        400: problemResponse("A bad query parameter."),
      },
    },
  };
  const idParam = { name: "id", in: "path", required: true, schema: { type: "string" } };
  paths["/tasks/{id}"] = {
    get: {
      tags: ["tasks"],
      operationId: "get_task",
      summary: "One task: state, attempts, payload, result or error, progress, history",
      parameters: [idParam],
      responses: { 200: jsonResponse("The task.", "Task"), 404: problemResponse("No such task.") },
    },
  };
  paths["/tasks/{id}/events"] = {
    get: {
      tags: ["tasks"],
      operationId: "watch_task",
      summary: "Server-Sent Events: one per state change or progress, until the task ends",
      parameters: [idParam],
      responses: {
        200: { description: "The event stream.", content: { "text/event-stream": {} } },
        404: problemResponse("No such task."),
      },
    },
  };
  paths["/handlers"] = {
    get: {
      tags: ["handlers"],
      operationId: "list_handlers",
      summary: "Handlers with their config, queue depth, consumers and workers",
      responses: { 200: { description: "The handlers.", content: { "application/json": {} } } },
    },
  };
  paths["/handlers/{name}/dead"] = {
    get: {
      tags: ["dead letters"],
      operationId: "list_dead",
      summary: "A handler's dead tasks with error, stack, attempts and times",
      parameters: [nameParam, limitParam],
      responses: {
        200: {
          description: "The dead letters and how many there are.",
          content: {
            "application/json": {
              schema: {
                type: "object",
                properties: {
                  handler: { type: "string" },
                  total: { type: "integer" },
                  tasks: { type: "array", items: { $ref: "#/components/schemas/DeadLetter" } },
                },
              },
            },
          },
        },
        404: problemResponse("No such handler."),
        503: problemResponse("The broker is unavailable."),
      },
    },
    delete: {
      tags: ["dead letters"],
      operationId: "purge_dead",
      summary: "Drop every dead letter of a handler",
      parameters: [nameParam],
      responses: { 200: { description: "`{ purged }`", content: { "application/json": {} } } },
    },
  };
  paths["/handlers/{name}/dead/replay"] = {
    post: {
      tags: ["dead letters"],
      operationId: "replay_all_dead",
      summary: "Run every dead task of a handler again",
      parameters: [nameParam],
      responses: {
        200: { description: "`{ replayed, ids }`", content: { "application/json": {} } },
      },
    },
  };
  paths["/handlers/{name}/dead/{id}/replay"] = {
    post: {
      tags: ["dead letters"],
      operationId: "replay_dead",
      summary: "Run one dead task again: same id, fresh attempt count",
      parameters: [nameParam, idParam],
      responses: {
        200: { description: "`{ replayed: 1, ids }`", content: { "application/json": {} } },
        404: problemResponse("No such dead task."),
      },
    },
  };
  paths["/healthz"] = {
    get: {
      tags: ["operations"],
      operationId: "healthz",
      summary: "200 while the process answers",
      ...open,
      responses: { 200: { description: "Alive." } },
    },
  };
  paths["/readyz"] = {
    get: {
      tags: ["operations"],
      operationId: "readyz",
      summary: "200 when the broker is connected and every handler consumes",
      ...open,
      responses: {
        200: { description: "Ready." },
        503: problemResponse("Not ready; `reasons` says why."),
      },
    },
  };
  paths["/metrics"] = {
    get: {
      tags: ["operations"],
      operationId: "metrics",
      summary: "Prometheus metrics",
      responses: { 200: { description: "Text exposition format.", content: { "text/plain": {} } } },
    },
  };

  return {
    openapi: "3.1.0",
    info: {
      title: "Warren",
      version: options.version,
      description: "Background tasks on Deno and RabbitMQ: enqueue, watch, inspect and replay.",
    },
    servers: [{ url: "/" }],
    ...(options.secured ? { security: [{ bearer: [] }] } : {}),
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: SCHEMAS,
    },
  };
}

const time = { type: ["string", "null"], format: "date-time" };

const SCHEMAS = {
  Problem: {
    type: "object",
    description: "RFC 9457 problem details.",
    properties: {
      type: { type: "string" },
      title: { type: "string" },
      status: { type: "integer" },
      detail: { type: "string" },
    },
    required: ["type", "title", "status"],
  },
  TaskAccepted: {
    type: "object",
    properties: {
      id: { type: "string" },
      handler: { type: "string" },
      state: { const: "queued" },
      created_at: { type: "string", format: "date-time" },
      run_at: time,
      links: { type: "object" },
    },
  },
  Task: {
    type: "object",
    properties: {
      id: { type: "string" },
      handler: { type: "string" },
      state: { type: "string", enum: TASK_STATES },
      attempts: { type: "integer" },
      replays: { type: "integer" },
      payload: {},
      result: {},
      error: {
        type: ["object", "null"],
        properties: {
          name: { type: "string" },
          message: { type: "string" },
          stack: { type: "string" },
        },
      },
      progress: {},
      created_at: time,
      started_at: time,
      finished_at: time,
      run_at: time,
      history: {
        type: "array",
        items: {
          type: "object",
          properties: {
            state: { type: "string" },
            attempt: { type: "integer" },
            replay: { type: "integer" },
            at: { type: "string", format: "date-time" },
            error: { type: ["string", "null"] },
          },
        },
      },
      links: { type: "object" },
    },
  },
  DeadLetter: {
    type: "object",
    properties: {
      id: { type: "string" },
      payload: {},
      error: { type: "object" },
      attempts: { type: "integer" },
      replays: { type: "integer" },
      created_at: time,
      failed_at: time,
    },
  },
};
