/**
 * The messages between the supervisor (main thread) and a handler's Web Worker.
 *
 * @module
 */

import type { TaskEvent } from "../events.ts";
import type { HandlerInfo } from "../handler.ts";
import type { LogOptions } from "../log.ts";
import type { JsonSchema } from "../schema.ts";
import type { Verdict } from "./ledger.ts";

/** A handler's name and payload schema, as a worker needs them for `ctx.enqueue`. */
export interface HandlerSchema {
  name: string;
  schema: JsonSchema | undefined;
}

/** Sent once to a new worker: what to run and where the broker is. */
export interface StartMessage {
  type: "start";
  handler: HandlerInfo;
  /** Every handler's name and payload schema: `ctx.enqueue` checks a payload as POST does. */
  handlers: HandlerSchema[];
  /** Largest payload a delivery may carry (`WARREN_MAX_BODY`). */
  maxBodyBytes: number;
  amqpUrl: string;
  prefix: string;
  /** Position of this worker among its handler's workers, for names in logs and the broker. */
  index: number;
  log: LogOptions;
}

/** Asks a worker to stop consuming, finish what it holds, close its connection and say so. */
export interface StopMessage {
  type: "stop";
}

/** The answer to a worker's `claim`. */
export interface VerdictMessage {
  type: "verdict";
  ref: number;
  verdict: Verdict;
}

/** Main thread to worker. */
export type ToWorker = StartMessage | StopMessage | VerdictMessage;

/**
 * Worker to main thread. Keys name one attempt (see `runKey` in `ledger.ts`); an attempt's
 * messages come in this order:
 *
 * 1. `begin` (a fresh first attempt: nothing can be known of it) or `claim` (a redelivery, a
 *    retry or a replay: it may repeat an attempt seen before; the `verdict` says what to do);
 * 2. `started` when the handler is called, `returned` when its call ends;
 * 3. `decided` once its retry or dead letter is confirmed by the broker (not for a success,
 *    whose outcome is its event), then `settled` once its outcome's event is confirmed. The
 *    delivery is acked after `settled`.
 */
export type FromWorker =
  /** The worker's consumer is up (again, after a reconnect). */
  | { type: "consuming" }
  /** The worker lost its broker connection; it reconnects by itself. */
  | { type: "disconnected" }
  /** The worker cannot run its handler (the module failed to load); it will not recover. */
  | { type: "fatal"; error: string }
  /** The worker finished a stop: nothing in flight, connection closed. */
  | { type: "stopped" }
  /** The handler called `Deno.exit` or `close()`: the worker is about to end. */
  | { type: "exit"; reason: string }
  /** The worker took a fresh first attempt. */
  | { type: "begin"; key: string }
  /** The worker took a copy that may repeat an attempt; answered with a `verdict`. */
  | { type: "claim"; key: string; ref: number }
  /** The handler is called; past `timeoutMs` plus a grace, the worker is terminated. */
  | { type: "started"; key: string; timeoutMs: number }
  /** The handler's call for an attempt returned or threw (it may have outlived its timeout). */
  | { type: "returned"; key: string }
  /** The attempt's retry or dead letter is in the broker; `event` records it. */
  | { type: "decided"; key: string; event: TaskEvent }
  /** The attempt's outcome is recorded (its event confirmed): only its ack may be missing. */
  | { type: "settled"; key: string };
