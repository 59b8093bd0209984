/**
 * Tracing: one W3C trace per task, from the POST (or whatever enqueued it) through the broker
 * into each attempt's span, where the handler's own calls (`fetch`, `ctx.enqueue`) land. Spans
 * go through Deno's built-in OpenTelemetry (`OTEL_DENO=true` and the standard `OTEL_*`
 * variables); this module only reads and writes the `traceparent` a task carries, and starts an
 * attempt's span. With no exporter configured, the tracer does nothing.
 *
 * @module
 */

import {
  type Context,
  context,
  type Link,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { hex, randomBytes } from "./random.ts";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const INVALID_TRACE = "0".repeat(32);
const INVALID_SPAN = "0".repeat(16);

/** Warren's tracer (a no-op unless OpenTelemetry is on). */
export const tracer = trace.getTracer("warren");

/**
 * Whether a string is a W3C `traceparent` (version 00) with a valid trace and span id.
 *
 * @example
 * ```ts
 * isTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); // true
 * isTraceparent("hello"); // false
 * ```
 */
export function isTraceparent(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const match = TRACEPARENT.exec(value);
  return match !== null && match[1] !== INVALID_TRACE && match[2] !== INVALID_SPAN;
}

/**
 * The trace id of a `traceparent`.
 *
 * @example
 * ```ts
 * traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); // "4bf92f3577b34da6a3ce929d0e0e4736"
 * ```
 */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/**
 * The `traceparent` of the span active now (or in `ctx`); undefined when there is none (tracing
 * is off, or nothing started one).
 *
 * @example
 * ```ts
 * traceparentOf(); // undefined outside any span
 * ```
 */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const span = trace.getSpanContext(ctx);
  if (!span || span.traceId === INVALID_TRACE) return undefined;
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 1) ? "01" : "00"}`;
}

/**
 * The `traceparent` a new task carries: the span active now when there is one; else the one a
 * client sent (`incoming`), passed on as it came; else a new trace.
 *
 * @example
 * ```ts
 * taskTraceparent(undefined).length; // 55: a new trace
 * ```
 */
export function taskTraceparent(incoming: string | null | undefined): string {
  const active = traceparentOf();
  if (active) return active;
  if (isTraceparent(incoming)) return incoming;
  const bytes = randomBytes(24);
  return `00-${hex(bytes, 0, 16)}-${hex(bytes, 16)}-01`;
}

/** A context whose parent is the remote span a `traceparent` names. */
function remote(traceparent: string | undefined): Context {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  if (!match) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: match[1],
    spanId: match[2],
    traceFlags: parseInt(match[3], 16),
    isRemote: true,
  });
}

/**
 * Whether a tracer provider is registered (Deno's, with `OTEL_DENO=true`, or one a handler set):
 * without one every span is a no-op that still cost an attempt a few microseconds.
 */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer("warren") !== undefined;
}

/** What an attempt's span is made of. */
export interface AttemptTrace {
  handler: string;
  taskId: string;
  attempt: number;
  replay: number;
  /** The task's `traceparent`: the span that enqueued it, parent of every attempt's span. */
  traceparent?: string;
  /** The `traceparent` of the attempt before (a retry links to it). */
  previousAttempt?: string;
}

/**
 * Runs `run` inside a new span for one attempt (a child of the span that enqueued the task,
 * linked to the attempt before), so what the handler does lands in it; `run` gets the span's
 * `traceparent` (what a retry links to). The span ends with the attempt, as an error when
 * `failed` says so of the result.
 *
 * @example
 * ```ts
 * const result = await traceAttempt(
 *   { handler: "hello", taskId: "t-1", attempt: 1, replay: 0 },
 *   () => Promise.resolve("done"),
 *   () => undefined,
 * );
 * ```
 */
export async function traceAttempt<T>(
  attempt: AttemptTrace,
  run: (traceparent: string | undefined) => Promise<T>,
  failed: (result: T) => string | undefined,
): Promise<T> {
  // No tracer provider: a span would do nothing, and the attempt's context is the task's own.
  if (!tracing()) return run(isTraceparent(attempt.traceparent) ? attempt.traceparent : undefined);
  const links: Link[] = [];
  const previous = trace.getSpanContext(remote(attempt.previousAttempt));
  if (previous) links.push({ context: previous });
  const span: Span = tracer.startSpan(`task ${attempt.handler}`, {
    kind: SpanKind.CONSUMER,
    links,
    attributes: {
      "messaging.system": "rabbitmq",
      "messaging.operation.type": "process",
      "warren.handler": attempt.handler,
      "warren.task.id": attempt.taskId,
      "warren.attempt": attempt.attempt,
      "warren.replay": attempt.replay,
    },
  }, remote(attempt.traceparent));
  const active = trace.setSpan(context.active(), span);
  try {
    const result = await context.with(active, () => run(traceparentOf(active)));
    const error = failed(result);
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    return result;
  } finally {
    span.end();
  }
}
