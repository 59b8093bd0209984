/**
 * The protocol between the supervisor (main thread) and a handler's Web Worker, in one place.
 *
 * **Lifecycle.** The supervisor sends `start` once; the worker answers `consuming` whenever its
 * consumer is up (again), `disconnected` when its connection drops, `fatal` when it cannot load
 * the handler, `exit` when the handler ends the worker itself. `stop` asks it to finish what it
 * holds; it answers `stopped`.
 *
 * **The ledger of runs** (`ledger.ts`, in the supervisor) follows every attempt by its key
 * (`<task id>/<replay>/<attempt>`). An attempt is, in the ledger:
 *
 * | state | meaning | a copy of its delivery hears |
 * |---|---|---|
 * | unknown | never seen here | `free`: run it |
 * | running | held by a worker, no outcome yet | waits until the state changes |
 * | decided | its retry or dead letter is confirmed; its event may not be | `decided`: record the event, ack |
 * | settled | its outcome's event is confirmed | `settled`: ack only |
 * | crashed | its worker died running it | `crashed`: a failed attempt, with the reason |
 *
 * A worker moves an attempt through it with `begin` (a fresh first attempt: unknown → running,
 * without waiting) or `claim` (a copy that may repeat one: answered with a `verdict`, and held
 * by the claimer unless settled), `started` and `returned` around the handler's call (the
 * supervisor's hard deadline: written on the board the two share, see `board.ts`, and sent as
 * messages only when the board is full), `decided`, and `settled`; the delivery is acked after
 * `settled`.
 * When a worker dies, its running attempts become crashed (or unknown again, for bystanders of
 * another attempt's timeout), and its decided ones wait for a copy to record them. A worker sends
 * `begin` (and a `returned` it sends) at the end of its turn, or with the next message that cannot
 * wait, so several messages may come as one `batch`, always in the order they were said.
 *
 * @module
 */

import type { TaskEvent } from "../events.ts";
import type { HandlerInfo } from "../handler.ts";
import type { LogOptions } from "../log.ts";
import type { JsonSchema } from "../schema.ts";
import type { Verdict } from "./ledger.ts";

/** A handler's name, payload schema and topics, as a worker needs them for `ctx.enqueue`. */
export interface HandlerSchema {
  name: string;
  schema: JsonSchema | undefined;
  /** The topic patterns it subscribes to (`ctx.publish` checks its subscribers' schemas). */
  subscribe: readonly string[];
  /** Where its idempotency key is in a payload (`ctx.enqueue` claims it). */
  idempotencyKey: readonly string[];
}

/** Sent once to a new worker: what to run and where the broker is. */
export interface StartMessage {
  type: "start";
  handler: HandlerInfo;
  /** Every handler's name and payload schema: `ctx.enqueue` checks a payload as POST does. */
  handlers: HandlerSchema[];
  /** Largest payload a delivery may carry (`WARREN_MAX_BODY`). */
  maxBodyBytes: number;
  amqpUrls: string[];
  prefix: string;
  /** Position of this worker among its handler's workers, for names in logs and the broker. */
  index: number;
  /** The board of the handler calls it is in, shared with the supervisor (see `board.ts`). */
  board: SharedArrayBuffer;
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

/** Worker to main thread; see the module's doc for the order of an attempt's messages. */
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
  /**
   * The handler is called; past `timeoutMs` plus a grace, the worker is terminated (sent only
   * when the call found no free slot on the board).
   */
  | { type: "started"; key: string; timeoutMs: number }
  /**
   * Tasks were cancelled (told by every worker as it reads them): a worker running one past a
   * grace is terminated, even one whose handler blocks its thread and cannot hear it.
   */
  | { type: "cancels"; ids: string[] }
  /** The attempt's task was cancelled: past a grace, the worker is terminated. */
  | { type: "cancelling"; key: string }
  /**
   * The handler's call for an attempt returned or threw (it may have outlived its timeout); sent
   * for a call that was announced by `started`.
   */
  | { type: "returned"; key: string }
  /** The attempt's retry or dead letter is in the broker; `event` records it. */
  | { type: "decided"; key: string; event: TaskEvent }
  /** The attempt's outcome is recorded (its event confirmed): only its ack may be missing. */
  | { type: "settled"; key: string }
  /** Several of the messages above, in the order they were said (one turn's, sent at once). */
  | { type: "batch"; messages: FromWorker[] };
