/**
 * The outcome of an attempt, and everything that follows it, in one place: a success is recorded;
 * a failure is retried after a backoff (through the delay cascade) while retries are left and
 * the error is not permanent, and else its task goes to the dead letters; then the outcome is
 * recorded, and only then is the delivery acked. Where a retry, a dead letter or an event goes is
 * an injected {@linkcode OutcomePort}, so each rule here is tested without a broker.
 *
 * Once its retry or dead letter is in the broker, an attempt is *decided*: the ledger remembers
 * it, so a copy of its delivery only records its event and is acked, and never schedules a
 * second retry (see `ledger.ts`).
 *
 * @module
 */

import { type BackoffBounds, backoffMs } from "../backoff.ts";
import type { TaskError, TaskEvent } from "../events.ts";
import type { LedgerClient } from "./ledger_client.ts";
import { eventOf, type Task } from "./task.ts";

/** The step after a failed attempt. */
export type AfterFailure = { retry: true; delaySeconds: number } | { retry: false };

/** How a handler's failures are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  backoff: BackoffBounds;
}

/**
 * Decides what follows failed attempt `attempt` (1-based) of a handler allowing `retries`: a
 * permanent error, or the last attempt, goes to the dead letters; anything else waits its
 * backoff, rounded up to the delay cascade's whole seconds.
 *
 * @example
 * ```ts
 * afterFailure(1, false, { retries: 3, backoff: { minMs: 1000, maxMs: 600_000 } });
 * // { retry: true, delaySeconds: 1 }
 * ```
 */
export function afterFailure(
  attempt: number,
  permanent: boolean,
  policy: RetryPolicy,
): AfterFailure {
  if (permanent || attempt > policy.retries) return { retry: false };
  return { retry: true, delaySeconds: Math.ceil(backoffMs(attempt, policy.backoff) / 1000) };
}

/** Where an attempt's outcome goes: the worker wires it to the broker, a test to fakes. */
export interface OutcomePort {
  /** Publishes the task for attempt + 1, `delaySeconds` from now; `false` if it never can be. */
  retry(task: Task, delaySeconds: number): Promise<boolean>;
  /** Puts the task in its dead letters; resolves even when the letter never can be (logged). */
  deadLetter(task: Task, error: TaskError): Promise<void>;
  /** Publishes an event of `task`; resolves once the broker confirmed it. */
  record(task: Task, event: TaskEvent): Promise<void>;
  ledger: Pick<LedgerClient, "decided" | "settled">;
  /** The stack as a task error shows it (see `cleanStack`). */
  cleanStack(stack: string): string;
}

/** See {@linkcode createOutcomes}. */
export interface Outcomes {
  /** The handler returned `result`. */
  succeeded(task: Task, result: unknown): Promise<void>;
  /** The attempt failed with `error`; a `permanent` one is not retried. */
  failed(task: Task, error: TaskError, permanent: boolean): Promise<void>;
  /** A copy of an attempt whose outcome was decided before: records `event`, then acks. */
  recorded(task: Task, event: TaskEvent): Promise<void>;
  /** The task was cancelled: it ends so, whether its handler ran or not. */
  cancelled(task: Task): Promise<void>;
}

/**
 * Creates the outcomes of one handler's attempts.
 *
 * @example
 * ```ts
 * declare const port: OutcomePort;
 * declare const task: import("./task.ts").Task;
 * const outcomes = createOutcomes(port, { retries: 3, backoff: { minMs: 1000, maxMs: 60_000 } });
 * await outcomes.failed(task, { message: "boom" }, false); // a retry in 1 s, then acked
 * ```
 */
export function createOutcomes(port: OutcomePort, policy: RetryPolicy): Outcomes {
  /** Records the outcome's event, tells the ledger, then acks: the ack comes last. */
  const record = async (task: Task, event: TaskEvent) => {
    await port.record(task, event);
    port.ledger.settled(task.key);
    task.ack();
  };

  /** The retry or dead letter is in the broker: a copy from now on only records `event`. */
  const decided = (task: Task, event: TaskEvent) => {
    port.ledger.decided(task.key, event);
    return record(task, event);
  };

  return {
    succeeded: (task, result) => record(task, eventOf(task, "succeeded", { result })),

    async failed(task, failure, permanent) {
      const error = failure.stack === undefined
        ? failure
        : { ...failure, stack: port.cleanStack(failure.stack) };
      const next = afterFailure(task.attempt, permanent, policy);
      if (next.retry && await port.retry(task, next.delaySeconds)) {
        const runAt = Date.now() + next.delaySeconds * 1000;
        return decided(task, eventOf(task, "retrying", { error, runAt }));
      }
      task.log.error("dead after {attempts} attempt(s): {error}", {
        attempts: task.attempt,
        error: error.message,
      });
      await port.deadLetter(task, error);
      return decided(task, eventOf(task, "dead", { error }));
    },

    recorded: record,

    cancelled(task) {
      task.log.info("cancelled");
      return record(task, eventOf(task, "cancelled"));
    },
  };
}
