/**
 * The handler contract: what a module in `handlers/` exports, what it receives, and how its
 * `config` is checked and completed with defaults.
 *
 * @example
 * ```ts
 * // handlers/resize-image.ts
 * import type { Context, HandlerConfig } from "warren";
 *
 * export const config: HandlerConfig = { workers: 2, timeout: "2m", subscribe: ["image.*"] };
 *
 * export default async function (payload: { path: string }, ctx: Context) {
 *   ctx.progress(0.5);
 *   return { ok: true };
 * }
 * ```
 *
 * @module
 */

import type { EventOrigin } from "./events.ts";
import type { Logger } from "./log.ts";
import { type Duration, parseDuration } from "./duration.ts";
import {
  type Permissions,
  type PermissionsConfig,
  readPermissions,
  ungranted,
} from "./permissions.ts";
import { readSchedule, type Schedule, type ScheduleConfig } from "./schedule.ts";
import { compileSchema, describeViolations, type JsonSchema } from "./schema.ts";
import { parseSize } from "./size.ts";
import { patternProblem } from "./topics.ts";

/** What a handler may set in `export const config`; every field is optional. */
export interface HandlerConfig {
  /** Web Workers running this handler, each with its own AMQP connection. Default 1. */
  workers?: number;
  /** Deliveries each worker holds at once. Default 1. */
  prefetch?: number;
  /** Time limit of one attempt; `ctx.signal` aborts when it is reached. Default `"5m"`. */
  timeout?: Duration;
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /**
   * Bounds of the exponential retry backoff. Default `{ min: "1s", max: "10m" }`. A retry waits in
   * the delay cascade, whose steps are whole seconds: a wait is rounded up to the next second, so
   * a backoff under one second (but not 0) waits one second.
   */
  backoff?: { min?: Duration; max?: Duration };
  /** JSON Schema of the payload; a POST whose body does not match is refused with 422. */
  schema?: JsonSchema;
  /**
   * Topics whose events this handler gets as tasks: AMQP topic patterns such as
   * `"order.created"`, `"order.*"` (one word) or `"order.#"` (any words). See `POST /events`.
   */
  subscribe?: string[];
  /**
   * Where each task's callback goes when it ends, unless its POST names another
   * (`Callback-Url`): an `http:` or `https:` URL. Needs `WARREN_WEBHOOK_SECRET`.
   */
  callback?: string;
  /**
   * How long its tasks are kept after they end, overriding `WARREN_RETENTION` (a duration), or
   * by how they ended: `{ succeeded: "1d", dead: "90d" }`.
   */
  retention?: Duration | { succeeded?: Duration; dead?: Duration };
  /**
   * Where in the payload its idempotency key is, for requests that send no `Idempotency-Key`:
   * a JSON Pointer such as `"/order_id"`, or several. Two POSTs whose payloads hold the same
   * values there make one task.
   */
  idempotencyKey?: string | string[];
  /**
   * Files a POST uploads with the task (`multipart/form-data`), by form field name; the handler
   * reads them as `ctx.files[name]`.
   */
  files?: Record<string, FileSpec>;
  /**
   * Runs a task on a schedule: a cron expression, five fields (`"0 * * * *"`: each hour) or six
   * with a second first, read in UTC; or `{ cron, timezone, payload }` for a time zone and the
   * tasks' payload (default `{}`). Each tick makes one task, however many api processes run.
   */
  schedule?: ScheduleConfig;
  /**
   * What its Web Workers may do beyond reaching the broker, in Deno's vocabulary: hosts it may
   * reach (`net`), paths it may `read` and `write` (relative to the project), environment
   * variables (`env`), programs it may `run`, `sys` calls and `ffi` libraries; `true` allows any.
   * Default: nothing.
   */
  permissions?: PermissionsConfig;
}

/** One file a handler accepts. */
export interface FileSpec {
  /** Media types accepted, e.g. `["image/png", "image/*"]`. Default any. */
  types?: string[];
  /** The largest size, e.g. `"10MiB"` (or bytes). Default `"10MiB"`. */
  maxSize?: string | number;
  /** Whether a POST must upload it. Default true. */
  required?: boolean;
}

/** {@linkcode FileSpec} with its defaults filled in. */
export interface ResolvedFileSpec {
  types: string[];
  maxBytes: number;
  required: boolean;
}

/** {@linkcode HandlerConfig} with every default filled in and durations in milliseconds. */
export interface ResolvedHandlerConfig {
  workers: number;
  prefetch: number;
  timeoutMs: number;
  retries: number;
  backoff: { minMs: number; maxMs: number };
  schema: JsonSchema | undefined;
  subscribe: string[];
  callback: string | undefined;
  /** By form field name; empty when the handler takes no files. */
  files: Record<string, ResolvedFileSpec>;
  /** JSON Pointers into the payload its idempotency key is made of; empty for none. */
  idempotencyKey: string[];
  /** Its own retention, in ms, where it sets one (else the settings' apply). */
  retention: { succeeded?: number; dead?: number };
  /** Its schedule, if it has one. */
  schedule: Schedule | undefined;
  /** What its Web Workers may do (besides reaching the broker). */
  permissions: Permissions;
}

/** What a handler gets besides its payload. */
export interface Context {
  /** The task's id: stable across retries and redeliveries, the key for idempotency. */
  readonly id: string;
  /** The handler's name. */
  readonly handler: string;
  /** 1 for the first attempt, 2 for the first retry, and so on. */
  readonly attempt: number;
  /** Aborts when the attempt's time limit is reached or the worker stops. */
  readonly signal: AbortSignal;
  /** A logger whose records carry the task id. */
  readonly log: Logger;
  /** Reports progress (a fraction, a count, or any JSON value); watchers see it live. */
  progress(value: unknown): void;
  /** Enqueues another task; resolves with its id once the broker has confirmed it. */
  enqueue(handler: string, payload?: unknown): Promise<string>;
  /**
   * Publishes an event: every handler subscribed to `topic` gets it as a task of its own.
   * Resolves with the event's id once the broker has confirmed it.
   */
  publish(topic: string, payload?: unknown): Promise<string>;
  /** The event this task was made from, when a handler got it by subscribing to its topic. */
  readonly event: EventOrigin | undefined;
  /** The files uploaded with the task, by form field name (see `config.files`). */
  readonly files: Readonly<Record<string, TaskFile>>;
}

/** A file uploaded with a task, as its handler reads it. */
export interface TaskFile {
  /** The form field it came in. */
  readonly field: string;
  /** Its name, as the client sent it. */
  readonly filename: string;
  /** Its media type, as the client sent it. */
  readonly type: string;
  /** Bytes. */
  readonly size: number;
  /** SHA-256 of its bytes, hex. */
  readonly sha256: string;
  /**
   * Its bytes, fetched over the broker a chunk at a time as they are read; the stream errors if
   * they do not match `sha256`. Each call starts a new read.
   */
  stream(): ReadableStream<Uint8Array>;
  /** All its bytes at once (for small files). */
  bytes(): Promise<Uint8Array>;
}

/** A handler: the default export of a module in `handlers/`. */
export type Handler<P = unknown, R = unknown> = (payload: P, ctx: Context) => R | Promise<R>;

/** A handler as Warren discovered it: serializable, so it can be handed to a Web Worker. */
export interface HandlerInfo {
  /** The file name without its extension: the handler's name and the tail of its queue name. */
  name: string;
  /** Absolute path of the module. */
  file: string;
  /** `file:` URL the worker imports. */
  moduleUrl: string;
  config: ResolvedHandlerConfig;
}

/**
 * Thrown by a handler to say "do not retry": the task goes straight to its dead-letter queue,
 * whatever attempts are left.
 *
 * @example
 * ```ts
 * import { PermanentError } from "warren";
 * declare function findUser(id: string): Promise<{ name: string } | undefined>;
 *
 * export default async function (payload: { userId: string }) {
 *   const user = await findUser(payload.userId);
 *   if (!user) throw new PermanentError(`no user ${payload.userId}`);
 * }
 * ```
 */
export class PermanentError extends Error {
  override name = "PermanentError";
}

/** Whether an error says "do not retry" (by class, or by name when thrown from another copy). */
export function isPermanent(error: unknown): boolean {
  return error instanceof PermanentError ||
    (error instanceof Error && error.name === "PermanentError");
}

/** A handler file whose name, exports or config Warren cannot accept. */
export class HandlerError extends Error {
  override name = "HandlerError";
}

/**
 * Gives a handler its types without a separate `config` export.
 *
 * @example
 * ```ts
 * export default defineHandler<{ seconds: number }>(async ({ seconds }, ctx) => {
 *   ctx.log.info("counting {seconds}", { seconds });
 * });
 * ```
 */
export function defineHandler<P = unknown, R = unknown>(handler: Handler<P, R>): Handler<P, R> {
  return handler;
}

/** Upper bound of `timeout`: below RabbitMQ's default consumer_timeout of 30 minutes. */
export const MAX_TIMEOUT_MS = 25 * 60_000;

const CONFIG_FIELDS = [
  "workers",
  "prefetch",
  "timeout",
  "retries",
  "backoff",
  "schema",
  "subscribe",
  "callback",
  "files",
  "idempotencyKey",
  "retention",
  "schedule",
  "permissions",
];

/**
 * Checks a module's `config` export and fills in the defaults; `where` names the file in errors,
 * and paths in its permissions are relative to `projectDir`.
 */
export function resolveConfig(
  config: unknown,
  where: string,
  projectDir = Deno.cwd(),
): ResolvedHandlerConfig {
  if (config === undefined) config = {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new HandlerError(`${where}: "config" must be an object`);
  }
  const fields = config as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!CONFIG_FIELDS.includes(key)) {
      throw new HandlerError(
        `${where}: unknown config field "${key}" (known: ${CONFIG_FIELDS.join(", ")})`,
      );
    }
  }
  const backoff = fields.backoff ?? {};
  if (typeof backoff !== "object" || backoff === null) {
    throw new HandlerError(`${where}: config.backoff must be { min, max }`);
  }
  const { min, max } = backoff as Record<string, unknown>;
  const resolved: ResolvedHandlerConfig = {
    workers: integer(fields.workers, 1, 1, 64, `${where}: config.workers`),
    prefetch: integer(fields.prefetch, 1, 1, 1000, `${where}: config.prefetch`),
    timeoutMs: duration(fields.timeout, "5m", 1, MAX_TIMEOUT_MS, `${where}: config.timeout`),
    retries: integer(fields.retries, 3, 0, 100, `${where}: config.retries`),
    backoff: {
      minMs: duration(min, "1s", 0, 30 * 86_400_000, `${where}: config.backoff.min`),
      maxMs: duration(max, "10m", 0, 30 * 86_400_000, `${where}: config.backoff.max`),
    },
    schema: undefined,
    subscribe: subscriptions(fields.subscribe, `${where}: config.subscribe`),
    callback: callbackUrl(fields.callback, `${where}: config.callback`),
    files: fileSpecs(fields.files, `${where}: config.files`),
    idempotencyKey: pointers(fields.idempotencyKey, `${where}: config.idempotencyKey`),
    retention: retention(fields.retention, `${where}: config.retention`),
    schedule: undefined,
    permissions: permissionsOf(fields.permissions, `${where}: config.permissions`, projectDir),
  };
  if (resolved.backoff.minMs > resolved.backoff.maxMs) {
    throw new HandlerError(`${where}: config.backoff.min is greater than config.backoff.max`);
  }
  if (fields.schema !== undefined) {
    try {
      compileSchema(fields.schema as JsonSchema);
    } catch (error) {
      throw new HandlerError(
        `${where}: config.schema is not a valid JSON Schema: ${(error as Error).message}`,
      );
    }
    resolved.schema = fields.schema as JsonSchema;
  }
  if (fields.schedule !== undefined) {
    resolved.schedule = scheduleOf(fields.schedule, resolved.schema, `${where}: config.schedule`);
  }
  return resolved;
}

/** Reads the permissions, with their errors as the handler's. */
function permissionsOf(value: unknown, name: string, projectDir: string): Permissions {
  let permissions: Permissions;
  try {
    permissions = readPermissions(value, name, projectDir);
  } catch (error) {
    throw new HandlerError((error as Error).message);
  }
  const [missing] = ungranted(permissions);
  if (missing) {
    throw new HandlerError(
      `${name}.${missing} needs Warren itself started with --allow-${missing} (a handler's ` +
        "workers get no more than the process has)",
    );
  }
  return permissions;
}

/** Reads a schedule, whose payload must meet the handler's schema. */
function scheduleOf(value: unknown, schema: JsonSchema | undefined, name: string): Schedule {
  let schedule: Schedule;
  try {
    schedule = readSchedule(value as ScheduleConfig, name);
  } catch (error) {
    throw new HandlerError((error as Error).message);
  }
  const violations = schema === undefined ? [] : compileSchema(schema)(schedule.payload);
  if (violations.length > 0) {
    throw new HandlerError(
      `${name}.payload does not meet config.schema: ` +
        describeViolations(violations),
    );
  }
  return schedule;
}

function retention(value: unknown, name: string): { succeeded?: number; dead?: number } {
  if (value === undefined) return {};
  const rule = typeof value === "object" && value !== null
    ? value
    : { succeeded: value, dead: value };
  const { succeeded, dead, ...rest } = rule as Record<string, unknown>;
  if (Object.keys(rest).length > 0) {
    throw new HandlerError(`${name} must be a duration, or { succeeded, dead } durations`);
  }
  const year = 366 * 86_400_000;
  return {
    ...(succeeded === undefined
      ? {}
      : { succeeded: duration(succeeded, "7d", 1, year, `${name}.succeeded`) }),
    ...(dead === undefined ? {} : { dead: duration(dead, "30d", 1, year, `${name}.dead`) }),
  };
}

function pointers(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((p) => typeof p === "string" && p.startsWith("/"))) {
    throw new HandlerError(`${name} must be a JSON Pointer such as "/order_id", or a list of them`);
  }
  return list;
}

/** The default of {@linkcode FileSpec.maxSize}. */
const DEFAULT_FILE_BYTES = 10 * 1024 * 1024;

function fileSpecs(value: unknown, name: string): Record<string, ResolvedFileSpec> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HandlerError(`${name} must be an object: { <field>: { types, maxSize, required } }`);
  }
  const specs: Record<string, ResolvedFileSpec> = {};
  for (const [field, spec] of Object.entries(value)) {
    const where = `${name}.${field}`;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(field)) {
      throw new HandlerError(`${where}: a field name is 1-64 letters, digits, "_" or "-"`);
    }
    const { types = ["*/*"], maxSize = DEFAULT_FILE_BYTES, required = true } = spec ?? {};
    if (
      !Array.isArray(types) || !types.every((t) => /^[\w.+-]+\/([\w.+-]+|\*)$|^\*\/\*$/.test(t))
    ) {
      throw new HandlerError(`${where}.types must be media types such as "image/png" or "image/*"`);
    }
    const maxBytes = parseSize(maxSize);
    if (maxBytes === undefined) {
      throw new HandlerError(`${where}.maxSize must be a size such as "512KiB" or "10MiB"`);
    }
    if (typeof required !== "boolean") {
      throw new HandlerError(`${where}.required must be true or false`);
    }
    specs[field] = { types: types.map((t: string) => t.toLowerCase()), maxBytes, required };
  }
  return specs;
}

function callbackUrl(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = typeof value === "string" ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new HandlerError(`${name} must be an http: or https: URL`);
  }
  return value as string;
}

function subscriptions(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((p) => typeof p === "string")) {
    throw new HandlerError(`${name} must be a list of topic patterns, e.g. ["order.*"]`);
  }
  for (const pattern of value) {
    const problem = patternProblem(pattern);
    if (problem) throw new HandlerError(`${name}: ${problem}`);
  }
  return [...new Set(value)];
}

function integer(value: unknown, fallback: number, min: number, max: number, name: string) {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new HandlerError(`${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function duration(value: unknown, fallback: Duration, min: number, max: number, name: string) {
  const ms = value === undefined
    ? parseDuration(fallback)
    : typeof value === "number" || typeof value === "string"
    ? parseDuration(value)
    : undefined;
  if (ms === undefined || ms < min || ms > max) {
    throw new HandlerError(
      `${name} must be a duration such as "30s" or "2m" (or milliseconds) ` +
        `from ${min}ms to ${max}ms`,
    );
  }
  return ms;
}
