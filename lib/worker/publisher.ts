/**
 * A worker's way out to the broker: lifecycle events gathered by the outbox, and outcomes
 * (retries, dead letters, their events) published on whatever connection is live, across
 * reconnects, until the broker confirmed them. Also the {@linkcode OutcomePort} that connects
 * `outcome.ts` to it.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { ConfirmChannel } from "amqplib";
import { publishDeadLetter, PublishError, publishEvents, sendTask } from "../amqp/publish.ts";
import type { Topology } from "../amqp/topology.ts";
import { backoffMs, NO_JITTER } from "../backoff.ts";
import type { TaskEvent } from "../events.ts";
import { errorMessage, type Logger } from "../log.ts";
import type { LedgerClient } from "./ledger_client.ts";
import type { OutcomePort } from "./outcome.ts";
import { createOutbox } from "./outbox.ts";
import { messageOf } from "./task.ts";

/** How long a worker waits for the broker to confirm a publish before trying again. */
export const CONFIRM_MS = 10_000;
/** How long an outcome that could not be published waits before the next try: 0.1 s to 2 s. */
const PERSIST_BACKOFF = { minMs: 100, maxMs: 2_000 };

/** See {@linkcode createPublisher}. */
export interface Publisher {
  /**
   * Runs `publish` on the live channel until it succeeds, across reconnects: an outcome, once
   * reached, is recorded even if the connection that delivered the task is gone. Rejects when
   * the worker stops first (the broker then redelivers the task), and at once with a
   * {@linkcode PublishError} that no retry can mend (a message that cannot be encoded).
   */
  persist(
    what: string,
    log: Logger,
    publish: (pub: ConfirmChannel) => Promise<void>,
  ): Promise<void>;
  /** Publishes an event (batched with others) until the broker confirmed it, across reconnects. */
  record(event: TaskEvent, log: Logger): Promise<void>;
  /** Sends an event once, without waiting: a lost report (progress, a new task) is only logged. */
  report(event: TaskEvent, log: Logger): void;
  /**
   * Sends an event and waits until it has left this thread, so a handler that blocks its
   * isolate next cannot hold it back: the outbox hands it to amqplib, whose multiplexer writes
   * it to the socket one turn of the event loop later. (Not until it is confirmed: on a
   * replicated queue a confirm costs a write to disk.)
   */
  announce(event: TaskEvent, log: Logger): Promise<void>;
}

/** What {@linkcode createPublisher} needs. */
export interface PublisherOptions {
  /** The live publishing channel, or undefined while disconnected. */
  channel(): ConfirmChannel | undefined;
  /** Whether the worker has stopped (outcomes still unpublished are left to redelivery). */
  stopped(): boolean;
  names: Topology;
}

/**
 * Creates a worker's publisher.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * declare const link: import("../amqp/connection.ts").BrokerLink<
 *   { pub: import("amqplib").ConfirmChannel }
 * >;
 * const publisher = createPublisher({
 *   channel: () => link.session()?.pub,
 *   stopped: () => false,
 *   names: topology("warren"),
 * });
 * ```
 */
export function createPublisher(options: PublisherOptions): Publisher {
  const outbox = createOutbox((events) => {
    const pub = options.channel();
    if (!pub) return Promise.reject(new Error("not connected to the broker"));
    return publishEvents(pub, options.names, events, CONFIRM_MS);
  });

  const persist: Publisher["persist"] = async (what, log, publish) => {
    for (let tries = 1;; tries++) {
      const pub = options.channel();
      if (pub) {
        try {
          return await publish(pub);
        } catch (error) {
          if (error instanceof PublishError && error.permanent) throw error;
          if (tries === 1) {
            log.warn("cannot {what} yet: {error}", { what, error: errorMessage(error) });
          }
        }
      }
      if (options.stopped()) throw new Error(`the worker stopped before it could ${what}`);
      const wait = backoffMs(tries, PERSIST_BACKOFF, NO_JITTER);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };

  const report: Publisher["report"] = (event, log) => {
    outbox.add(event).catch((error) =>
      log.debug("could not report {type}: {error}", {
        type: event.type,
        error: errorMessage(error),
      })
    );
  };

  return {
    persist,
    record: (event, log) => persist(`record the ${event.type} event`, log, () => outbox.add(event)),
    report,
    async announce(event, log) {
      report(event, log);
      await outbox.sent();
      for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

/**
 * The {@linkcode OutcomePort} of a worker: retries and dead letters published through the
 * publisher, confirmed, across reconnects.
 *
 * @example
 * ```ts
 * declare const publisher: Publisher;
 * import { topology } from "../amqp/topology.ts";
 * declare const ledger: import("./ledger_client.ts").LedgerClient;
 * const port = brokerPort(publisher, topology("warren"), ledger, (stack) => stack);
 * ```
 */
export function brokerPort(
  publisher: Publisher,
  names: Topology,
  ledger: Pick<LedgerClient, "decided" | "settled">,
  cleanStack: (stack: string) => string,
): OutcomePort {
  return {
    retry: (task, delaySeconds) =>
      publisher.persist(
        "schedule the retry",
        task.log,
        (pub) =>
          sendTask(pub, names, messageOf(task), CONFIRM_MS, {
            delaySeconds,
            attempt: task.attempt + 1,
            replay: task.replay,
          }),
      ).then(() => true, unlessUnsendable(task.log, "retry")),
    deadLetter: (task, error) =>
      publisher.persist(
        "dead-letter the task",
        task.log,
        (pub) =>
          publishDeadLetter(pub, names, task.handler, task.body, { ...task, error }, CONFIRM_MS),
      )
        .catch(unlessUnsendable(task.log, "dead letter")).then(() => {}),
    record: (task, event) => publisher.record(event, task.log),
    ledger,
    cleanStack,
  };
}

/**
 * For a publish that failed for good: logs it and resolves `false`, so the task goes on to its
 * next step (a retry that cannot be sent dies; a death without its letter is still recorded).
 * Anything else (the worker stopping) rejects as before.
 */
function unlessUnsendable(log: Logger, what: string) {
  return (error: unknown): false => {
    if (!(error instanceof PublishError && error.permanent)) throw error;
    log.error("cannot send the {what} of this task, ever: {error}", {
      what,
      error: errorMessage(error),
    });
    return false;
  };
}
