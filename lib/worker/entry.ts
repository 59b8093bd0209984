/**
 * The Web Worker module that runs one handler: it opens its own AMQP connection, consumes the
 * handler's queue with the configured prefetch, runs each task, reports lifecycle events, and
 * acks a delivery only after its outcome (success, a scheduled retry, or a dead letter) was
 * confirmed by the broker. A redelivered message first asks the supervisor's ledger what became
 * of the delivery before it (see `ledger.ts`).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { newTaskId } from "../id.ts";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { bindChannel, type BrokerLink, openLink } from "../amqp/connection.ts";
import { PublishError } from "../amqp/publish.ts";
import { declareAll, topology } from "../amqp/topology.ts";
import { publishTask, sendTask } from "../enqueue.ts";
import { publishDeadLetter } from "../deadletter.ts";
import { publishEvents, type TaskError, type TaskEvent } from "../events.ts";
import { HANDLER_NAME } from "../discover.ts";
import type { Context, Handler } from "../handler.ts";
import { errorMessage, type Logger, logger, setupLogging } from "../log.ts";
import { readPayload, toJson } from "../payload.ts";
import { afterFailure } from "../retry.ts";
import { backoffMs, NO_JITTER } from "../backoff.ts";
import { compileSchema, type Validator } from "../schema.ts";
import { cleanStack, type StackPlaces } from "../task_error.ts";
import { type Acks, createAcks } from "./acks.ts";
import { attempt } from "./attempt.ts";
import { readDelivery, type TaskFacts } from "./delivery.ts";
import { guardExit } from "./exit_guard.ts";
import type { Verdict } from "./ledger.ts";
import { createOutbox } from "./outbox.ts";
import type { FromWorker, StartMessage, ToWorker } from "./protocol.ts";

/** How long an outcome that could not be published waits before the next try: 0.1 s to 2 s. */
const PERSIST_BACKOFF = { minMs: 100, maxMs: 2_000 };
/** How long a worker waits for the broker to confirm a publish before trying again. */
const CONFIRM_MS = 10_000;
/**
 * Deliveries of one attempt that may end without an outcome and without this process knowing
 * why (the whole process died each time, e.g. out of memory) before the task is declared dead.
 */
export const MAX_DELIVERIES = 10;

// A Worker's global scope; typed by hand because this project type-checks with the window lib.
const port = self as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  close(): void;
};

interface Session {
  pub: ConfirmChannel;
  sub: Channel;
  /** Acks of the deliveries of `sub`. */
  acks: Acks;
  /** The prefetch `sub` consumes with. */
  prefetch: number;
  consumerTag?: string;
}

/** A delivery being worked on. */
interface Task extends TaskFacts {
  delivery: ConsumeMessage;
  /** The session whose channel delivered it: the only one its ack may go to. */
  session: Session;
  log: Logger;
  /** When the handler was called (ms since the epoch); undefined until then. */
  startedAt: number | undefined;
}

let worker: Running | undefined;
const verdicts = new Map<number, (verdict: Verdict) => void>();
let refs = 0;

// Set before any await, or early messages are lost.
port.onmessage = (event) => {
  const message = event.data;
  if (message.type === "start") {
    start(message).catch((error) =>
      port.postMessage({ type: "fatal", error: errorMessage(error) })
    );
  } else if (message.type === "stop") {
    (worker ? worker.stop() : Promise.resolve()).then(() => port.postMessage({ type: "stopped" }));
  } else if (message.type === "verdict") {
    verdicts.get(message.ref)?.(message.verdict);
    verdicts.delete(message.ref);
  }
};

guardExit(port, (reason) => port.postMessage({ type: "exit", reason }));

interface Running {
  stop(): Promise<void>;
}

/** Asks the ledger what to do with a copy that may repeat an attempt (see `protocol.ts`). */
function claim(key: string): Promise<Verdict> {
  const ref = ++refs;
  return new Promise((resolve) => {
    verdicts.set(ref, resolve);
    port.postMessage({ type: "claim", key, ref });
  });
}

/** Tells the ledger this worker took a fresh first attempt: nothing is known of it. */
function begin(key: string): Verdict {
  port.postMessage({ type: "begin", key });
  return { kind: "free" };
}

/**
 * Whether a delivery may repeat an attempt this process saw: a redelivery, or a retry or replay
 * (published again after a confirm timeout). A fresh first attempt cannot: Warren's producers
 * publish it once.
 */
function mayRepeat(task: TaskFacts & { delivery: ConsumeMessage }): boolean {
  return task.delivery.fields.redelivered || task.attempt > 1 || task.replay > 0;
}

/**
 * Sends the acks waiting on a session's channel and waits until the broker has them: one round
 * trip on the same channel (frames of a channel are handled in order). Closing the connection at
 * once would lose them, as amqplib may put the connection's close ahead of the channel's acks.
 */
async function flushAcks(session: Session | undefined): Promise<void> {
  if (!session) return;
  session.acks.flush();
  // basic.qos is a harmless round trip: its answer comes after the broker took the acks.
  await session.sub.prefetch(session.prefetch).catch(() => {});
}

async function start(message: StartMessage): Promise<void> {
  setupLogging(message.log);
  const info = message.handler;
  const config = info.config;
  const log = logger("worker", `${info.name}#${message.index}`);
  let handler: Handler;
  try {
    handler = (await import(info.moduleUrl)).default;
  } catch (error) {
    port.postMessage({
      type: "fatal",
      error: `cannot import ${info.file}: ${errorMessage(error)}`,
    });
    return;
  }

  const schemas = new Map(message.handlers.map((h) => [h.name, h.schema]));
  const validators = new Map<string, Validator | undefined>();
  /** The payload check of a handler, compiled when first needed. */
  const validatorOf = (name: string): Validator | undefined => {
    if (!validators.has(name)) {
      const schema = schemas.get(name);
      validators.set(name, schema === undefined ? undefined : compileSchema(schema));
    }
    return validators.get(name);
  };
  // Stacks show the handler's frames relative to its project, and none of Warren's own.
  const stackPlaces: StackPlaces = {
    hidden: [new URL("../", import.meta.url).href],
    relative: [
      new URL("../", new URL(".", info.moduleUrl)).href,
      new URL("../../", import.meta.url).href,
    ],
  };
  const names = topology(message.prefix);
  const queue = names.taskQueue(info.name);
  const inflight = new Set<Promise<void>>();
  let stopping = false;
  let closed = false;

  const link: BrokerLink<Session> = openLink({
    url: message.amqpUrl,
    name: `warren ${message.prefix} worker ${info.name}#${message.index}`,
    log,
    setup: async (model: ChannelModel) => {
      const pub = bindChannel(model, await model.createConfirmChannel(), log);
      const sub = bindChannel(model, await model.createChannel(), log);
      await declareAll(sub, names, [info.name]);
      await sub.prefetch(config.prefetch);
      const session: Session = { pub, sub, acks: createAcks(sub), prefetch: config.prefetch };
      if (!stopping) {
        const reply = await sub.consume(queue, (delivery) => {
          if (!delivery) {
            // The broker cancelled the consumer (the queue was deleted): never sit there with no
            // consumer. Closing the channel closes the connection, and the link rebuilds both.
            sub.close().catch(() => {});
            return;
          }
          session.acks.track(delivery);
          const run = receive(session, delivery).finally(() => inflight.delete(run));
          inflight.add(run);
        });
        session.consumerTag = reply.consumerTag;
        // Verify, rather than assume, that the queue has its consumer again.
        const { consumerCount } = await sub.checkQueue(queue);
        if (consumerCount === 0) throw new Error(`queue ${queue} has no consumer after consume`);
      }
      return session;
    },
    onUp: () => port.postMessage({ type: "consuming" }),
    onDown: () => port.postMessage({ type: "disconnected" }),
  });

  const outbox = createOutbox(async (events) => {
    const session = link.session();
    if (!session) throw new Error("not connected to the broker");
    await publishEvents(session.pub, names, events, CONFIRM_MS);
  });

  /**
   * Runs `action` on the live session until it succeeds, across reconnects: an outcome, once
   * reached, is recorded even if the connection that delivered the task is gone. Rejects when
   * the worker stops first (the broker then redelivers the task), and at once with a
   * {@linkcode PublishError} that no retry can mend (a message that cannot be encoded).
   */
  async function persist(what: string, l: Logger, action: (s: Session) => Promise<void>) {
    for (let tries = 0;; tries++) {
      const session = link.session();
      if (session) {
        try {
          return await action(session);
        } catch (error) {
          if (error instanceof PublishError && error.permanent) throw error;
          if (tries === 0) {
            l.warn("cannot {what} yet: {error}", { what, error: errorMessage(error) });
          }
        }
      }
      if (closed) throw new Error(`the worker stopped before it could ${what}`);
      const wait = backoffMs(tries + 1, PERSIST_BACKOFF, NO_JITTER);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** Sends an event; resolves when confirmed or failed (a lost report is only logged). */
  function report(event: TaskEvent, l: Logger): Promise<void> {
    return outbox.add(event).catch((error) =>
      l.debug("could not report {type}: {error}", { type: event.type, error: errorMessage(error) })
    );
  }

  /**
   * Sends an attempt's `running` event and waits until it has left this thread, so a handler
   * that blocks its isolate next cannot hold it back: the outbox hands it to amqplib, whose
   * multiplexer writes it to the socket one turn of the event loop later. (Not until it is
   * confirmed: on a replicated queue a confirm costs a write to disk, milliseconds per task, and
   * an attempt's outcome carries its start anyway.)
   */
  async function announce(running: TaskEvent): Promise<void> {
    report(running, log);
    await outbox.sent();
    for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  }

  async function receive(session: Session, delivery: ConsumeMessage): Promise<void> {
    const facts = readDelivery(delivery);
    const task: Task = {
      ...facts,
      delivery,
      session,
      log: log.with({ taskId: facts.id, attempt: facts.attempt }),
      startedAt: undefined,
    };
    try {
      const verdict = mayRepeat(task) ? await claim(task.key) : begin(task.key);
      if (verdict.kind === "settled") return ack(task);
      if (verdict.kind === "decided") return await record(task, verdict.event);
      if (verdict.kind === "crashed") {
        return await fail(task, { name: "WorkerCrash", message: verdict.reason }, false);
      }
      if (delivery.fields.redelivered && task.deliveries >= MAX_DELIVERIES) {
        return await fail(task, {
          name: "PoisonMessage",
          message: `delivered ${task.deliveries + 1} times without an outcome: the process ` +
            "running it died each time (out of memory, or killed)",
        }, true);
      }
      await run(task);
    } catch (error) {
      // Only a stop gets here (see persist): the broker redelivers the task.
      task.log.debug("left to redelivery: {error}", { error: errorMessage(error) });
    }
  }

  /** The facts every event of this attempt carries. */
  function eventOf(task: Task, type: TaskEvent["type"], more: Partial<TaskEvent> = {}): TaskEvent {
    const event: TaskEvent = {
      type,
      id: task.id,
      handler: info.name,
      attempt: task.attempt,
      at: Date.now(),
      ...more,
    };
    if (task.replay > 0) event.replay = task.replay;
    if (task.createdAt !== undefined) event.createdAt = task.createdAt;
    if (task.startedAt !== undefined && type !== "running" && type !== "progress") {
      event.startedAt = task.startedAt;
    }
    return event;
  }

  async function run(task: Task): Promise<void> {
    const check = readPayload(task.delivery.content, {
      maxBytes: message.maxBodyBytes,
      validate: validatorOf(info.name),
    });
    if (!check.ok) {
      return fail(task, { name: "InvalidPayload", message: check.refusal.detail }, true);
    }
    const payload = check.payload;
    await announce(eventOf(task, "running", { payload: task.fromWarren ? undefined : payload }));

    // The attempt's clock starts now, with the handler, here and in the supervisor.
    const controller = new AbortController();
    task.startedAt = Date.now();
    port.postMessage({ type: "started", key: task.key, timeoutMs: config.timeoutMs });
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${config.timeoutMs} ms`)),
      config.timeoutMs,
    );
    const ctx: Context = {
      id: task.id,
      handler: info.name,
      attempt: task.attempt,
      signal: controller.signal,
      log: task.log,
      progress: (value) => report(eventOf(task, "progress", { progress: toJson(value) }), task.log),
      enqueue,
    };
    const outcome = await attempt(
      () => handler(payload, ctx),
      controller.signal,
      () => port.postMessage({ type: "returned", key: task.key }),
    );
    clearTimeout(timer);
    if (!outcome.ok) {
      task.log.warn("attempt {attempt} failed: {error}", {
        attempt: task.attempt,
        error: outcome.error.message,
      });
      return fail(task, outcome.error, outcome.permanent);
    }
    await record(task, eventOf(task, "succeeded", { result: outcome.result }));
  }

  /**
   * A failed attempt: schedules the next one through the delay cascade, or (when none is left,
   * or the error is permanent) moves the task to its dead-letter queue; then records that.
   */
  async function fail(task: Task, failure: TaskError, permanent: boolean): Promise<void> {
    const error = failure.stack === undefined
      ? failure
      : { ...failure, stack: cleanStack(failure.stack, stackPlaces) };
    const message = {
      id: task.id,
      handler: info.name,
      body: task.delivery.content,
      createdAt: task.createdAt,
    };
    const next = afterFailure(task.attempt, permanent, config);
    if (next.retry) {
      const { delaySeconds } = next;
      const scheduled = await persist(
        "schedule the retry",
        task.log,
        (s) =>
          sendTask(s.pub, names, message, CONFIRM_MS, {
            delaySeconds,
            attempt: task.attempt + 1,
            replay: task.replay,
          }),
      ).then(() => true, unlessUnsendable(task.log, "retry"));
      if (scheduled) {
        const runAt = Date.now() + delaySeconds * 1000;
        return decided(task, eventOf(task, "retrying", { error, runAt }));
      }
    }
    task.log.error("dead after {attempts} attempt(s): {error}", {
      attempts: task.attempt,
      error: error.message,
    });
    await persist("dead-letter the task", task.log, (s) =>
      publishDeadLetter(s.pub, names, {
        ...message,
        error,
        attempts: task.attempt,
        replay: task.replay,
      }, CONFIRM_MS)).catch(unlessUnsendable(task.log, "dead letter"));
    return decided(task, eventOf(task, "dead", { error }));
  }

  /**
   * For a publish that failed for good: logs it and resolves `false`, so the task goes on to its
   * next step (a retry that cannot be sent dies; a death without its letter is still recorded).
   * Anything else (the worker stopping) rejects as before.
   */
  function unlessUnsendable(l: Logger, what: string) {
    return (error: unknown): false => {
      if (!(error instanceof PublishError && error.permanent)) throw error;
      l.error("cannot send the {what} of this task, ever: {error}", {
        what,
        error: errorMessage(error),
      });
      return false;
    };
  }

  /**
   * The attempt's retry or dead letter is in the broker: from now on a copy of this delivery
   * only records `event` (see the ledger), which this delivery does next.
   */
  function decided(task: Task, event: TaskEvent): Promise<void> {
    port.postMessage({ type: "decided", key: task.key, event });
    return record(task, event);
  }

  /** Records the attempt's outcome (its event, confirmed), tells the ledger, then acks. */
  async function record(task: Task, event: TaskEvent): Promise<void> {
    await persist(`record the ${event.type} event`, task.log, () => outbox.add(event));
    port.postMessage({ type: "settled", key: task.key });
    ack(task);
  }

  /** Acks the delivery with the next flush (dropped if its channel died meanwhile). */
  function ack(task: Task): void {
    task.session.acks.ack(task.delivery);
  }

  async function enqueue(handlerName: string, taskPayload: unknown = {}): Promise<string> {
    if (!HANDLER_NAME.test(handlerName) || !schemas.has(handlerName)) {
      throw new Error(`ctx.enqueue: unknown handler "${handlerName}"`);
    }
    const payload = toJson(taskPayload);
    const violations = validatorOf(handlerName)?.(payload) ?? [];
    if (violations.length > 0) {
      throw new Error(
        `ctx.enqueue: the payload does not match the schema of "${handlerName}": ` +
          violations.map((v) => `${v.pointer || "payload"} ${v.message}`).join("; "),
      );
    }
    const session = link.session();
    if (!session) throw new Error("ctx.enqueue: not connected to the broker; try again");
    const task = { id: newTaskId(), handler: handlerName, payload, createdAt: Date.now() };
    await publishTask(session.pub, names, task, CONFIRM_MS);
    report({
      type: "queued",
      id: task.id,
      handler: handlerName,
      attempt: 0,
      at: task.createdAt,
      payload,
    }, log);
    return task.id;
  }

  worker = {
    async stop() {
      stopping = true;
      const session = link.session();
      if (session?.consumerTag) await session.sub.cancel(session.consumerTag).catch(() => {});
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      await flushAcks(link.session());
      closed = true;
      await link.close();
    },
  };
}
