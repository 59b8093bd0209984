/**
 * A task's life in a worker, as a short run of named steps:
 *
 * 1. **ask the ledger** what became of this attempt before (a copy may repeat one): run it, only
 *    ack it, record its decided outcome, or count it failed because its worker died;
 * 2. **honour a cancel**: a cancelled task ends `cancelled` without running (see `cancels.ts`);
 * 3. **guard against poison**: a message delivered too often without any outcome is dead;
 * 4. **read the payload** by the rules every producer meets, or end it dead;
 * 5. **announce** it running;
 * 6. **run the handler** under its time limit, the clock starting with the call, its signal
 *    aborting when the task is cancelled meanwhile;
 * 7. hand the result or the failure to **the outcome** (`outcome.ts`), which records it and acks;
 *    a failure after a cancel ends the task `cancelled`, and one its sandbox caused (a permission
 *    the handler did not declare) says which to declare, and is not retried.
 *
 * Every collaborator is passed in, so each step is tested without a broker or a Web Worker.
 *
 * @module
 */

import { coarseTimeout } from "../coarse_timer.ts";
import type { TaskError, TaskEvent } from "../events.ts";
import type { Context, Handler, ResolvedHandlerConfig } from "../handler.ts";
import { errorMessage, type Logger } from "../log.ts";
import { deniedPermission } from "../permissions.ts";
import { traceAttempt } from "../trace.ts";
import { readPayload } from "../payload.ts";
import type { Validator } from "../schema.ts";
import { attempt } from "./attempt.ts";
import { cancelledError, type Cancels } from "./cancels.ts";
import type { LedgerClient } from "./ledger_client.ts";
import type { Outcomes } from "./outcome.ts";
import { eventOf, mayRepeat, type Task } from "./task.ts";

/**
 * Deliveries of one attempt that may end without an outcome and without this process knowing
 * why (the whole process died each time, e.g. out of memory) before the task is declared dead.
 */
export const MAX_DELIVERIES = 10;

/** What {@linkcode createExecutor} needs. */
export interface ExecutorDeps {
  handler: Handler;
  /** The handler's file name, for the advice of an error its sandbox caused. */
  file: string;
  config: Pick<ResolvedHandlerConfig, "timeoutMs">;
  /** Largest payload a delivery may carry (`WARREN_MAX_BODY`). */
  maxBodyBytes: number;
  /** The handler's payload check, if it has a schema. */
  validate: Validator | undefined;
  ledger: Pick<
    LedgerClient,
    "begin" | "claim" | "started" | "cancelling" | "returned" | "settled"
  >;
  /** The cancels this worker knows. */
  cancels: Pick<Cancels, "has" | "watch">;
  outcomes: Outcomes;
  /** Sends the `running` event; resolves once it has left this thread. */
  announce(event: TaskEvent, log: Logger): Promise<void>;
  /** The handler's `ctx` for an attempt. */
  context(task: Task, signal: AbortSignal): Context;
  /**
   * For a handler with `config.idempotencyKey`: whether this task holds its payload's key (run
   * it), is a repeat of the task that does (drop it), or cannot know now (fail the attempt).
   */
  holdsKey?(task: Task, payload: unknown): Promise<KeyHolding>;
}

/** What {@linkcode ExecutorDeps.holdsKey} says. */
export type KeyHolding = "holds" | "repeat" | { error: TaskError; permanent: boolean };

/**
 * Creates the function that takes one delivery's task through its life. It rejects never: a
 * stop of the worker in the middle leaves the delivery unacked, for the broker to redeliver.
 *
 * @example
 * ```ts
 * declare const deps: ExecutorDeps;
 * declare const task: import("./task.ts").Task;
 * const execute = createExecutor(deps);
 * await execute(task);
 * ```
 */
export function createExecutor(deps: ExecutorDeps): (task: Task) => Promise<void> {
  const { outcomes } = deps;
  return async (task) => {
    try {
      if (await askTheLedger(deps, task)) return;
      if (deps.cancels.has(task.id)) return await outcomes.cancelled(task);
      if (await poisoned(deps, task)) return;
      const check = readPayload(task.body, {
        maxBytes: deps.maxBodyBytes,
        validate: deps.validate,
      });
      if (!check.ok) {
        return await outcomes.failed(task, invalid(check.refusal.detail), true);
      }
      if (await notItsToRun(deps, task, check.payload)) return;
      await deps.announce(
        eventOf(task, "running", { payload: task.fromWarren ? undefined : check.payload }),
        task.log,
      );
      const outcome = await runHandler(deps, task, check.payload);
      if (outcome.ok) return await outcomes.succeeded(task, outcome.result);
      if (deps.cancels.has(task.id)) return await outcomes.cancelled(task);
      // A permission its sandbox denied fails the same way each time: no retry.
      const denied = deniedPermission(outcome.error, deps.file);
      const error = denied ?? outcome.error;
      task.log.warn("attempt {attempt} failed: {error}", {
        attempt: task.attempt,
        error: error.message,
      });
      await outcomes.failed(task, error, outcome.permanent || denied !== undefined);
    } catch (error) {
      // Only a stop gets here (the publisher gives up): the broker redelivers the task.
      task.log.debug("left to redelivery: {error}", { error: errorMessage(error) });
    }
  };
}

/**
 * Step 4: `true` when the task's idempotency key says it is not to run now: a repeat of the task
 * that holds the key (acked and dropped, recorded nowhere), or a key that cannot be checked.
 */
async function notItsToRun(deps: ExecutorDeps, task: Task, payload: unknown): Promise<boolean> {
  const holding = await deps.holdsKey?.(task, payload) ?? "holds";
  if (holding === "holds") return false;
  if (holding === "repeat") {
    task.log.info("dropped: another task holds this payload's idempotency key");
    deps.ledger.settled(task.key);
    task.ack();
    return true;
  }
  await deps.outcomes.failed(task, holding.error, holding.permanent);
  return true;
}

/** Step 1: `true` when the ledger took care of this delivery. */
async function askTheLedger(deps: ExecutorDeps, task: Task): Promise<boolean> {
  const { ledger, outcomes } = deps;
  const verdict = mayRepeat(task) ? await ledger.claim(task.key) : ledger.begin(task.key);
  switch (verdict.kind) {
    case "free":
      return false;
    case "settled":
      task.ack();
      return true;
    case "decided":
      await outcomes.recorded(task, verdict.event);
      return true;
    case "crashed":
      // Ended by the supervisor after its cancel's grace: cancelled, not failed.
      if (deps.cancels.has(task.id)) await outcomes.cancelled(task);
      else await outcomes.failed(task, { name: "WorkerCrash", message: verdict.reason }, false);
      return true;
  }
}

/** Step 3: `true` when the message keeps coming back with no outcome: it is dead now. */
async function poisoned(deps: ExecutorDeps, task: Task): Promise<boolean> {
  if (!task.redelivered || task.deliveries < MAX_DELIVERIES) return false;
  await deps.outcomes.failed(task, {
    name: "PoisonMessage",
    message: `delivered ${task.deliveries + 1} times without an outcome: the process ` +
      "running it died each time (out of memory, or killed)",
  }, true);
  return true;
}

/** Step 4's failure: a payload that breaks a rule. */
function invalid(detail: string): TaskError {
  return { name: "InvalidPayload", message: detail };
}

/**
 * Step 6: one call of the handler under its time limit, in the attempt's span (see `trace.ts`);
 * the clock starts with the call. A cancel meanwhile aborts its signal, and the supervisor ends
 * the worker if the handler goes on.
 */
async function runHandler(deps: ExecutorDeps, task: Task, payload: unknown) {
  // Called as a plain function, so its stack frame reads "at <name>", not "at Object.<name>".
  const handler = deps.handler;
  const { timeoutMs } = deps.config;
  const controller = new AbortController();
  task.startedAt = Date.now();
  deps.ledger.started(task.key, timeoutMs);
  const clearTimer = coarseTimeout(
    () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
    timeoutMs,
  );
  const unwatch = deps.cancels.watch(task.id, () => {
    controller.abort(cancelledError());
    deps.ledger.cancelling(task.key);
  });
  const ctx = deps.context(task, controller.signal);
  const outcome = await traceAttempt(
    { ...task, taskId: task.id },
    (traceparent) => {
      task.attemptTraceparent = traceparent; // a retry's span links to this one
      return attempt(
        () => handler(payload, ctx),
        controller.signal,
        () => deps.ledger.returned(task.key),
      );
    },
    (outcome) => outcome.ok ? undefined : outcome.error.message,
  );
  clearTimer();
  unwatch();
  return outcome;
}
