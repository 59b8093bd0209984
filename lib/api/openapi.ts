/**
 * The OpenAPI 3.1 document of the HTTP API (GET /openapi.json): every route with every answer it
 * can give, each body's schema, and for each handler its own enqueue route whose request body is
 * that handler's payload schema. The test suite checks every answer it sees against it.
 *
 * @module
 */

import type { HandlerInfo } from "../handler.ts";
import { TASK_STATES } from "../events.ts";
import { MAX_DEPTH } from "../payload.ts";
import { PERMISSION_KINDS, type Permissions } from "../permissions.ts";
import { permissionsJson } from "./system.ts";
import { PAGE_MAX } from "./page.ts";
import { SCHEMAS } from "./openapi_schemas.ts";

type Json = Record<string, unknown>;

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ref("Problem") } },
});
const json = (description: string, schema: Json) => ({
  description,
  content: { "application/json": { schema } },
});
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const sse = (description: string) => ({
  description,
  content: { "text/event-stream": { schema: { type: "string" } } },
});

const pageParams = [
  {
    name: "limit",
    in: "query",
    description: "Most items returned.",
    schema: { type: "integer", minimum: 1, maximum: PAGE_MAX, default: 50 },
  },
  {
    name: "cursor",
    in: "query",
    description: "Where the page before ended: its `next_cursor`.",
    schema: { type: "string" },
  },
];
const nameParam = {
  name: "name",
  in: "path",
  required: true,
  description: "The handler's name.",
  schema: { type: "string" },
};
const idParam = { name: "id", in: "path", required: true, schema: { type: "string" } };
const callbackParam = {
  name: "Callback-Url",
  in: "header",
  description: "When the task ends (each task, for an event), Warren POSTs its JSON here, " +
    "signed as Standard Webhooks says (`webhook-id`, `webhook-timestamp`, " +
    "`webhook-signature`), and tries again with backoff until a 2xx. Needs " +
    "`WARREN_WEBHOOK_SECRET`; private addresses need `WARREN_CALLBACK_ALLOW`.",
  schema: { type: "string", format: "uri" },
};
const keyParam = {
  name: "Idempotency-Key",
  in: "header",
  description: "Makes a retry safe: a repeat with the same key and request within " +
    "`WARREN_IDEMPOTENCY_TTL` (24 h) is answered as the first was (with " +
    "`Idempotent-Replayed: true`) and enqueues nothing; the same key with another request is " +
    "422; a repeat while the first is still being enqueued is 409.",
  schema: { type: "string", maxLength: 255 },
};
const keyAnswers = {
  409: problem("A request with this `Idempotency-Key` is being enqueued now; see `Retry-After`."),
};
const waitParam = {
  name: "wait",
  in: "query",
  description: "Hold the answer until the task ends, up to this long: seconds (`30`) or a " +
    "duration (`30s`, `1m`); at most `WARREN_MAX_WAIT` (60 s by default; a longer wait waits " +
    "that long).",
  schema: { type: "string" },
};
const unknownHandler = problem("No such handler.");
const brokerAway = problem(
  "The broker (or the task store) is unavailable; nothing was done. See `Retry-After`.",
);
const storeAway = problem(
  "The task store is unavailable (its database is away). See `Retry-After`.",
);

/**
 * Builds the document for `handlers`; with `secured`, every route but the public ones requires
 * the bearer token (and may answer 401).
 *
 * @example
 * ```ts
 * import { discoverHandlers } from "../discover.ts";
 * const handlers = await discoverHandlers("./handlers");
 * const doc = openApiDocument(handlers, { secured: true, version: "0.3.0" });
 * doc.paths["/tasks/hello"].post.requestBody; // the hello handler's schema
 * ```
 */
export function openApiDocument(
  handlers: HandlerInfo[],
  options: { secured: boolean; version: string },
): Json & { paths: Record<string, Record<string, Json>> } {
  const paths: Record<string, Record<string, Json>> = {};
  for (const h of handlers) paths[`/tasks/${h.name}`] = { post: enqueueOperation(h) };
  paths["/events/{topic}"] = { post: publishOperation(handlers) };
  Object.assign(paths, structuredClone(ROUTES)); // a copy: the 401s below are added to it
  if (options.secured) {
    for (const operation of Object.values(paths).flatMap(Object.values)) {
      if (operation.security === undefined) {
        (operation.responses as Json)[401] = problem("The bearer token is missing or wrong.");
      }
    }
  }
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

/**
 * A handler's upload body: its files as binary parts, and its payload's properties as the other
 * fields (an object or array field is sent as JSON).
 */
function uploadBody(h: HandlerInfo): Json {
  const files = Object.entries(h.config.files);
  const payload = (h.config.schema ?? {}) as { properties?: Json; required?: string[] };
  const properties: Json = {};
  for (const [name, schema] of Object.entries(payload.properties ?? {})) {
    properties[name] = schema;
  }
  const encoding: Json = {};
  for (const [field, spec] of files) {
    properties[field] = {
      type: "string",
      format: "binary",
      description: `${spec.types.join(", ")}; at most ${spec.maxBytes} bytes`,
    };
    encoding[field] = { contentType: spec.types.join(", ") };
  }
  const required = [
    ...(payload.required ?? []),
    ...files.filter(([, spec]) => spec.required).map(([field]) => field),
  ];
  return { schema: { type: "object", properties, required }, encoding };
}

/** A handler's enqueue route: its payload schema is the request body. */
function enqueueOperation(h: HandlerInfo): Json {
  const body = h.config.schema === undefined
    ? { schema: {}, example: {} } // any JSON; an object is the usual payload
    : { schema: h.config.schema };
  const takesFiles = Object.keys(h.config.files).length > 0;
  const content: Json = takesFiles
    ? { "multipart/form-data": uploadBody(h) }
    : { "application/json": body, "*/*": body };
  if (takesFiles && !Object.values(h.config.files).some((spec) => spec.required)) {
    content["application/json"] = body;
  }
  return {
    tags: ["tasks"],
    operationId: `enqueue_${h.name.replaceAll("-", "_")}`,
    summary: `Enqueue a ${h.name} task`,
    description: `Runs \`${h.file.split("/").at(-1)}\` with the body as payload (timeout ` +
      `${h.config.timeoutMs} ms, ${h.config.retries} retries). The 202 comes only after the ` +
      "broker confirmed the task. The body is read as JSON whatever its content type; an " +
      `empty one is \`{}\`; JSON nested deeper than ${MAX_DEPTH} levels is refused. ` +
      `Its sandbox: ${sandboxText(h.config.permissions)}.`,
    parameters: [
      {
        name: "delay",
        in: "query",
        description:
          "Run no earlier than this: seconds (`90`, `1.5`) or a duration (`90s`, `2h`); " +
          "rounded up to whole seconds; at most 30 days.",
        schema: { type: "string" },
      },
      waitParam,
      callbackParam,
      keyParam,
    ],
    requestBody: { required: takesFiles, content },
    responses: {
      200: json(
        "With `?wait=`: the task ended within the wait (`succeeded` with its result, or `dead` " +
          "with its error).",
        ref("Task"),
      ),
      202: json(
        "Accepted: the broker has the task (with `?wait=`: it had not ended when the wait ran " +
          "out; follow `Location`).",
        ref("TaskAccepted"),
      ),
      400: problem(
        "The body is not JSON or nests too deeply, a query parameter is bad, or the " +
          "`Callback-Url` cannot be used.",
      ),
      ...keyAnswers,
      413: problem("The body is over `WARREN_MAX_BODY`, or a file over its `maxSize`."),
      415: problem("A file of a type the handler does not accept, or the wrong kind of body."),
      422: problem(
        "The payload does not match the handler's schema (`errors` lists why), or the " +
          "`Idempotency-Key` was used for a different request.",
      ),
      429: problem("Too many tasks await the broker's confirm; nothing was enqueued."),
      503: problem(
        "Shutting down, or the broker is unavailable or did not confirm in time; the detail " +
          "says whether the task may still run, and `Retry-After` when to try again.",
      ),
    },
  };
}

/** The publish route: its description lists who subscribes to what. */
function publishOperation(handlers: HandlerInfo[]): Json {
  const subscriptions = handlers.filter((h) => h.config.subscribe.length > 0)
    .map((h) => `\`${h.name}\`: ${h.config.subscribe.map((p) => `\`${p}\``).join(", ")}`);
  return {
    tags: ["events"],
    operationId: "publish_event",
    summary: "Publish an event: each handler subscribed to its topic gets a task of it",
    description: "The event goes to the broker once, with its confirm before the 202; every " +
      "handler whose `subscribe` patterns match the topic gets a task of its own (its own id, " +
      "retries, dead letters and history). No subscriber is not an error: `tasks` is empty. " +
      "The body is the payload, read as for a task, and checked against every subscriber's " +
      "schema. Subscriptions: " + (subscriptions.join("; ") || "none") + ".",
    parameters: [
      {
        name: "topic",
        in: "path",
        required: true,
        description: "Words joined by dots (letters, digits, `_`, `-`), e.g. `order.created`.",
        schema: { type: "string", maxLength: 255 },
      },
      callbackParam,
      keyParam,
    ],
    requestBody: {
      required: false,
      content: { "application/json": { schema: {}, example: {} }, "*/*": { schema: {} } },
    },
    responses: {
      202: json("Accepted: the broker has the event; the tasks it made.", ref("EventAccepted")),
      400: problem(
        "A bad topic or `Callback-Url`, or the body is not JSON or nests too deeply.",
      ),
      ...keyAnswers,
      413: problem("The body is over `WARREN_MAX_BODY`."),
      415: problem("A multipart body: an event carries no files."),
      422: problem("The payload does not match a subscriber's schema; `errors` lists why."),
      429: problem("Too many messages await the broker's confirm; nothing was published."),
      503: problem(
        "Shutting down, or the broker is unavailable or did not confirm in time; the detail " +
          "says whether the event may still reach its subscribers.",
      ),
    },
  };
}

const open = { security: [] };

/** Every route but the handlers' enqueue routes. */
const ROUTES: Record<string, Record<string, Json>> = {
  "/tasks": {
    get: {
      tags: ["tasks"],
      operationId: "list_tasks",
      summary: "Recent tasks, newest first, as summaries, a page at a time",
      parameters: [
        { name: "handler", in: "query", schema: { type: "string" } },
        { name: "state", in: "query", schema: { type: "string", enum: TASK_STATES } },
        ...pageParams,
      ],
      responses: {
        200: json('A page of tasks; `Link: <…>; rel="next"` when there is more.', ref("TaskPage")),
        400: problem("A bad query parameter."),
        503: storeAway,
      },
    },
  },
  "/tasks/{id}": {
    get: {
      tags: ["tasks"],
      operationId: "get_task",
      summary: "One task: state, attempts, payload, result or error, progress, history",
      description: "With `?wait=`, a long poll: answers once the task has ended, or when the " +
        "wait runs out (with the task as it is then).",
      parameters: [idParam, waitParam],
      responses: {
        200: json("The task.", ref("Task")),
        400: problem("A bad `wait`."),
        404: problem("No such task, or it expired (its title says which)."),
        503: storeAway,
      },
    },
    delete: {
      tags: ["tasks"],
      operationId: "delete_task",
      summary: "Delete a task that has ended, and its files",
      parameters: [idParam],
      responses: {
        204: { description: "Deleted, with its files." },
        404: problem("No such task."),
        409: problem("It has not ended, or its dead letter still waits in the queue."),
        503: storeAway,
      },
    },
  },
  "/tasks/{id}/cancel": {
    post: {
      tags: ["tasks"],
      operationId: "cancel_task",
      summary: "Cancel a task: one that waits never runs; a running one is stopped",
      description: "A queued, delayed or retrying task is `cancelled` at once (200) and its " +
        "handler never runs, on any worker, even one started later. A running task is " +
        "cancelled once its worker hears it (202): `ctx.signal` aborts with the reason " +
        "`cancelled`, and if the handler goes on past a 2 s grace its worker is terminated. " +
        "Cancelled is terminal: `?wait`, SSE, WebSocket, callbacks and metrics see it so.",
      parameters: [idParam],
      responses: {
        200: json("Cancelled.", ref("Task")),
        202: json("Running: its worker stops it; watch it end.", ref("Task")),
        404: problem("No such task, or it expired."),
        409: problem("It has ended already."),
        503: problem("The broker or the store is away: try again."),
      },
    },
  },
  "/tasks/{id}/files/{field}": {
    get: {
      tags: ["tasks"],
      operationId: "get_task_file",
      summary: "Download a file uploaded with a task",
      parameters: [idParam, {
        name: "field",
        in: "path",
        required: true,
        schema: { type: "string" },
      }],
      responses: {
        200: {
          description: "The file's bytes, with its type; `Repr-Digest` carries its SHA-256.",
          content: { "*/*": { schema: { type: "string", format: "binary" } } },
        },
        404: problem("No such task, or no such file of it."),
        503: storeAway,
      },
    },
  },
  "/tasks/{id}/events": {
    get: {
      tags: ["tasks"],
      operationId: "watch_task",
      summary: "Server-Sent Events: one per state change or progress, until the task ends",
      description: "Each event's `id` is the task's version: send it back as `Last-Event-ID` " +
        "to hear only what came after it.",
      parameters: [
        idParam,
        { name: "Last-Event-ID", in: "header", schema: { type: "string" } },
      ],
      responses: {
        200: sse("The event stream; each event's data is the task."),
        204: { description: "The task has ended, and the client saw its end: stop listening." },
        404: problem("No such task."),
        503: storeAway,
      },
    },
  },
  "/handlers": {
    get: {
      tags: ["handlers"],
      operationId: "list_handlers",
      summary: "Handlers with their config, queue depth, consumers and workers",
      responses: { 200: json("The handlers.", ref("Handlers")) },
    },
  },
  "/handlers/{name}/dead": {
    get: {
      tags: ["dead letters"],
      operationId: "list_dead",
      summary: "A handler's dead tasks, newest first, as summaries, a page at a time",
      parameters: [nameParam, ...pageParams],
      responses: {
        200: json("A page of dead letters, and how many the queue holds.", ref("DeadPage")),
        400: problem("A bad query parameter."),
        404: unknownHandler,
        503: storeAway,
      },
    },
    delete: {
      tags: ["dead letters"],
      operationId: "purge_dead",
      summary: "Drop every dead letter of a handler",
      parameters: [nameParam],
      responses: {
        200: json("How many were dropped.", ref("Purged")),
        404: unknownHandler,
        503: brokerAway,
      },
    },
  },
  "/schedules": {
    get: {
      tags: ["tasks"],
      operationId: "list_schedules",
      summary: "Each scheduled handler: its cron, next run and last run",
      description: "A handler with `config.schedule` gets one task per tick, however many api " +
        "processes run; ticks missed while everything was down run once on return.",
      responses: {
        200: json("The schedules.", ref("Schedules")),
        503: storeAway,
      },
    },
  },
  "/handlers/{name}/cancel": {
    post: {
      tags: ["tasks"],
      operationId: "cancel_waiting",
      summary: "Cancel every waiting (queued, delayed, retrying) task of a handler",
      parameters: [nameParam],
      responses: {
        200: json("How many were cancelled.", ref("Cancelled")),
        404: unknownHandler,
        503: problem("The broker or the store is away: try again."),
      },
    },
  },
  "/handlers/{name}/dead/replay": {
    post: {
      tags: ["dead letters"],
      operationId: "replay_all_dead",
      summary: "Run every dead task of a handler again",
      parameters: [nameParam],
      responses: {
        200: json("The tasks replayed.", ref("Replayed")),
        404: unknownHandler,
        503: brokerAway,
      },
    },
  },
  "/handlers/{name}/dead/{id}/replay": {
    post: {
      tags: ["dead letters"],
      operationId: "replay_dead",
      summary: "Run one dead task again: same id, fresh attempt count",
      parameters: [nameParam, idParam],
      responses: {
        200: json("The task replayed.", ref("Replayed")),
        404: problem("No such handler, or no such task in its dead letters."),
        503: brokerAway,
      },
    },
  },
  "/stream": {
    get: {
      tags: ["operations"],
      operationId: "stream",
      summary: "The dashboard's live feed: changed tasks (`tasks`) and handler stats (`stats`)",
      responses: { 200: sse("Server-Sent Events.") },
    },
  },
  "/ws": {
    get: {
      tags: ["tasks"],
      operationId: "websocket",
      summary: "WebSocket: subscribe to a task, a handler or everything; the same events as SSE",
      description: "Upgrade with the subprotocol `warren`. With `WARREN_API_TOKEN` set, also " +
        'offer `warren.bearer.<token>`, or send `{"type":"auth","token":"…"}` ' +
        "first (else the socket closes with 4401). Then send " +
        '`{"type":"subscribe","task":"<id>"}` (or `"handler":"<name>"`, or `"all":true`), ' +
        "and `unsubscribe` alike; each event comes as " +
        '`{"type":"event","event":"<state>","version":n,"task":{…}}`. A client that leaves ' +
        "more than 1 MiB unread is closed with 4008; at shutdown, 1001.",
      ...open,
      responses: {
        101: { description: "Switching protocols: the WebSocket is open." },
        403: problem("The `Origin` is another site's."),
        426: problem("Not a WebSocket handshake."),
      },
    },
  },
  "/healthz": {
    get: {
      tags: ["operations"],
      operationId: "healthz",
      summary: "200 while the process answers",
      ...open,
      responses: { 200: json("Alive.", ref("Status")) },
    },
  },
  "/readyz": {
    get: {
      tags: ["operations"],
      operationId: "readyz",
      summary: "200 when the broker is connected and every handler consumes",
      ...open,
      responses: {
        200: json("Ready.", ref("Status")),
        503: problem("Not ready (or draining); `reasons` says why."),
      },
    },
  },
  "/metrics": {
    get: {
      tags: ["operations"],
      operationId: "metrics",
      summary: "Prometheus metrics",
      responses: {
        200: {
          description: "Text exposition format 0.0.4.",
          content: { "text/plain": { schema: { type: "string" } } },
        },
      },
    },
  },
};

/** What a handler's sandbox allows, in words, for its enqueue route's description. */
function sandboxText(permissions: Permissions): string {
  const shown = permissionsJson(permissions);
  const granted = PERMISSION_KINDS.flatMap((kind) => {
    const list = shown[kind];
    if (list === true) return [`${kind}: any`];
    return list.length ? [`${kind}: ${list.map((e) => `\`${e}\``).join(", ")}`] : [];
  });
  return granted.length ? granted.join("; ") : "nothing but the broker";
}
