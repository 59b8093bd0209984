/**
 * The messages between the supervisor (main thread) and a handler's Web Worker.
 *
 * @module
 */

import type { HandlerInfo } from "../handler.ts";
import type { LogOptions } from "../log.ts";
import type { Verdict } from "./ledger.ts";

/** Sent once to a new worker: what to run and where the broker is. */
export interface StartMessage {
  type: "start";
  handler: HandlerInfo;
  /** Names of all handlers, so `ctx.enqueue` can refuse an unknown one. */
  handlers: string[];
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

/** Worker to main thread. Keys name one attempt: see `runKey` in `ledger.ts`. */
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
  /** An attempt starts; past `timeoutMs` plus a grace, the worker is terminated. */
  | { type: "begin"; key: string; timeoutMs: number }
  /** The handler's call for an attempt returned or threw (it may have outlived its timeout). */
  | { type: "returned"; key: string }
  /** The attempt's outcome is recorded (succeeded, retry scheduled, or dead). */
  | { type: "settled"; key: string }
  /** A redelivered copy asks what became of the attempt; answered with a `verdict`. */
  | { type: "claim"; key: string; ref: number };
