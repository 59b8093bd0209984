/**
 * The Web Worker module that runs one handler: it opens its own AMQP connection, consumes the
 * handler's queue with the configured prefetch, runs each task, reports lifecycle events, and
 * acks a delivery only after its outcome was confirmed by the broker.
 *
 * @module
 */

import { newTaskId } from "../id.ts";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { bindChannel, type BrokerLink, openLink } from "../amqp/connection.ts";
import { declareAll, topology } from "../amqp/topology.ts";
import { ATTEMPT_HEADER, CREATED_AT_HEADER, publishTask } from "../enqueue.ts";
import { publishEvents, type TaskError, type TaskEvent } from "../events.ts";
import { HANDLER_NAME } from "../discover.ts";
import type { Context, Handler } from "../handler.ts";
import { errorMessage, type Logger, logger, setupLogging } from "../log.ts";
import { type Acks, createAcks } from "./acks.ts";
import { createOutbox, type Outbox } from "./outbox.ts";
import type { FromWorker, StartMessage, ToWorker } from "./protocol.ts";

const decoder = new TextDecoder();

/** How long a worker waits for the broker to confirm an event before giving the delivery back. */
const EVENT_CONFIRM_MS = 10_000;

// A Worker's global scope; typed by hand because this project type-checks with the window lib.
const port = self as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};

interface Session {
  pub: ConfirmChannel;
  sub: Channel;
  /** Lifecycle events go out through it, batched, on `pub`. */
  outbox: Outbox;
  /** Acks of the deliveries of `sub`. */
  acks: Acks;
  consumerTag?: string;
}

let worker: Running | undefined;

// Set before any await, or early messages are lost.
port.onmessage = (event) => {
  const message = event.data;
  if (message.type === "start") {
    start(message).catch((error) =>
      port.postMessage({ type: "fatal", error: errorMessage(error) })
    );
  } else if (message.type === "stop") {
    (worker ? worker.stop() : Promise.resolve()).then(() => port.postMessage({ type: "stopped" }));
  }
};

interface Running {
  stop(): Promise<void>;
}

async function start(message: StartMessage): Promise<void> {
  setupLogging(message.log);
  const info = message.handler;
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

  const names = topology(message.prefix);
  const queue = names.taskQueue(info.name);
  const inflight = new Set<Promise<void>>();
  let stopping = false;

  const link: BrokerLink<Session> = openLink({
    url: message.amqpUrl,
    name: `warren ${message.prefix} worker ${info.name}#${message.index}`,
    log,
    setup: async (model: ChannelModel) => {
      const pub = bindChannel(model, await model.createConfirmChannel(), log);
      const sub = bindChannel(model, await model.createChannel(), log);
      await declareAll(sub, names, [info.name]);
      await sub.prefetch(info.config.prefetch);
      const outbox = createOutbox((events) => publishEvents(pub, names, events, EVENT_CONFIRM_MS));
      const session: Session = { pub, sub, outbox, acks: createAcks(sub) };
      if (!stopping) {
        const reply = await sub.consume(queue, (delivery) => {
          if (!delivery) {
            // The broker cancelled the consumer (the queue was deleted): never sit there with no
            // consumer. Closing the channel closes the connection, and the link rebuilds both.
            sub.close().catch(() => {});
            return;
          }
          session.acks.track(delivery);
          const run = runDelivery(session, delivery).finally(() => inflight.delete(run));
          inflight.add(run);
        });
        session.consumerTag = reply.consumerTag;
      }
      return session;
    },
    onUp: () => port.postMessage({ type: "consuming" }),
    onDown: () => port.postMessage({ type: "disconnected" }),
  });

  async function runDelivery(session: Session, delivery: ConsumeMessage): Promise<void> {
    const props = delivery.properties;
    const headers = props.headers ?? {};
    const id = typeof props.messageId === "string" && props.messageId
      ? props.messageId
      : newTaskId();
    const attempt = positiveInteger(headers[ATTEMPT_HEADER]) ?? 1;
    // Warren's producers record the task ("queued", with its payload and creation time) before
    // they answer; for other producers the first event carries those facts.
    const fromWarren = headers[CREATED_AT_HEADER] !== undefined;
    const createdAt = fromWarren || typeof props.timestamp !== "number"
      ? undefined
      : props.timestamp * 1000;
    const base = { id, handler: info.name, attempt, createdAt };
    const taskLog = log.with({ taskId: id, attempt });

    let outcome: Pick<TaskEvent, "type" | "result" | "error">;
    let payload: unknown;
    try {
      const text = decoder.decode(delivery.content);
      payload = text.trim() === "" ? {} : JSON.parse(text);
    } catch (error) {
      outcome = { type: "dead", error: { message: `payload is not JSON: ${errorMessage(error)}` } };
      return finish(session, delivery, { ...base, ...outcome, at: Date.now() }, taskLog);
    }

    // Wait for the broker to have the "running" event: a handler that never yields would
    // otherwise hold it in this thread's socket buffer until it returns.
    await report(session, {
      ...base,
      type: "running",
      at: Date.now(),
      payload: fromWarren ? undefined : payload,
    }, taskLog);

    const controller = new AbortController();
    const ctx: Context = {
      id,
      handler: info.name,
      attempt,
      signal: controller.signal,
      log: taskLog,
      progress: (value) =>
        report(
          session,
          { ...base, type: "progress", at: Date.now(), progress: json(value) },
          taskLog,
        ),
      enqueue: (handlerName, taskPayload = {}) => enqueue(session, handlerName, json(taskPayload)),
    };
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${info.config.timeoutMs} ms`)),
      info.config.timeoutMs,
    );
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => handler(payload, ctx)),
        aborted(controller.signal),
      ]);
      outcome = { type: "succeeded", result: json(result ?? null) };
    } catch (error) {
      outcome = { type: "dead", error: describeError(error) };
      taskLog.warn("failed: {error}", { error: outcome.error?.message });
    } finally {
      clearTimeout(timer);
    }
    await finish(session, delivery, { ...base, ...outcome, at: Date.now() }, taskLog);
  }

  /** Records the outcome, then acks; if the broker did not confirm, gives the delivery back. */
  async function finish(session: Session, delivery: ConsumeMessage, event: TaskEvent, l: Logger) {
    try {
      await session.outbox.add(event);
    } catch (error) {
      l.warn("could not record the outcome ({error}); the task will be delivered again", {
        error: errorMessage(error),
      });
      session.acks.requeue(delivery);
      return;
    }
    session.acks.ack(delivery);
  }

  /** Sends an event; resolves when confirmed or failed (a lost report is only logged). */
  function report(session: Session, event: TaskEvent, l: Logger): Promise<void> {
    return session.outbox.add(event).catch((error) =>
      l.debug("could not report {type}: {error}", { type: event.type, error: errorMessage(error) })
    );
  }

  async function enqueue(session: Session, handlerName: string, payload: unknown) {
    if (!HANDLER_NAME.test(handlerName) || !message.handlers.includes(handlerName)) {
      throw new Error(`ctx.enqueue: unknown handler "${handlerName}"`);
    }
    const task = { id: newTaskId(), handler: handlerName, payload, createdAt: Date.now() };
    await publishTask(session.pub, names, task, EVENT_CONFIRM_MS);
    report(session, {
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
      link.session()?.acks.flush();
      await link.close();
    },
  };
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

function positiveInteger(value: unknown): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** A JSON copy of a value; throws when it cannot be one (a BigInt, a cycle). */
function json(value: unknown): unknown {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value));
}

function describeError(error: unknown): TaskError {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack };
  }
  return { message: String(error) };
}
