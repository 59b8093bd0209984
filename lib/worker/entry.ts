/**
 * The Web Worker module that runs one handler: the glue between the supervisor's messages
 * (`protocol.ts`) and the parts of a worker. It is handed the handler's module (see
 * {@linkcode provide}), then wires a consumer of the
 * handler's queue (`consumer.ts`) to the executor of a task's life (`executor.ts`), whose
 * outcomes (`outcome.ts`) go out through the publisher (`publisher.ts`).
 *
 * @module
 */

import { basename } from "node:path";
import { topology } from "../amqp/topology.ts";
import { publishEvent, publishTask } from "../amqp/publish.ts";
import type { Handler } from "../handler.ts";
import { errorMessage, logger, setupLogging } from "../log.ts";
import { handlerStacks } from "../task_error.ts";
import { type BoardWriter, boardWriter } from "./board.ts";
import { cancelFeed } from "./cancel_feed.ts";
import { CANCELS_MAX, createCancels } from "./cancels.ts";
import { type Consumer, startConsumer } from "./consumer.ts";
import { createContext, createEnqueue, createPublish, schemasOf } from "./context.ts";
import { taskFiles } from "./files.ts";
import { keyAsker, keyHolder } from "./keys.ts";
import { guardExit } from "./exit_guard.ts";
import { createExecutor } from "./executor.ts";
import { createLedgerClient } from "./ledger_client.ts";
import { createOutcomes } from "./outcome.ts";
import type { FromWorker, StartMessage, ToWorker } from "./protocol.ts";
import { brokerPort, CONFIRM_MS, createPublisher } from "./publisher.ts";
import { taskOf } from "./task.ts";

// A Worker's global scope; typed by hand because this project type-checks with the window lib.
const port = self as unknown as {
  postMessage(message: FromWorker): void;
  addEventListener(type: "message", listener: (event: MessageEvent<ToWorker>) => void): void;
  close(): void;
};

/** How long reading the cancels stream back to its end may take on a connect. */
const CATCH_UP_MS = 30_000;

/** The handler's module, handed over by the module the worker starts from (see `supervisor.ts`). */
const handlerModule = Promise.withResolvers<Record<string, unknown>>();

/**
 * Hands the worker its handler's module: the module a handler's Web Worker starts from imports
 * both, then calls this.
 *
 * @example
 * ```ts
 * import * as handler from "../../handlers/hello.ts";
 * provide(handler);
 * ```
 */
export function provide(module: Record<string, unknown>): void {
  handlerModule.resolve(module);
}

/** The board this worker shares with its supervisor (see `board.ts`), from its start message. */
let board: BoardWriter | undefined;
const ledger = createLedgerClient((message) => port.postMessage(message), () => board);
let consumer: Consumer | undefined;

// Set before any await, or early messages are lost.
// The first listener (this module is evaluated before the handler's): no listener the handler
// adds, and no `onmessage` it sets, hears the supervisor's messages, the broker's URLs among them.
port.addEventListener("message", (event) => {
  event.stopImmediatePropagation();
  const message = event.data;
  if (message.type === "start") {
    start(message).catch((error) =>
      port.postMessage({ type: "fatal", error: errorMessage(error) })
    );
  } else if (message.type === "stop") {
    (consumer?.stop() ?? Promise.resolve()).then(() => port.postMessage({ type: "stopped" }));
  } else if (message.type === "verdict") {
    ledger.answer(message);
  }
});

guardExit(port, (reason) => port.postMessage({ type: "exit", reason }));

async function start(message: StartMessage): Promise<void> {
  setupLogging(message.log);
  board = boardWriter(message.board);
  const { name, config, moduleUrl, file } = message.handler;
  const log = logger("worker", `${name}#${message.index}`);
  const handler = (await handlerModule.promise).default as Handler;

  const names = topology(message.prefix);
  const publisher = createPublisher({
    channel: () => consumer?.channel(),
    stopped: () => consumer?.stopped() ?? false,
    names,
  });
  const schemas = schemasOf(message.handlers);
  const report = (event: Parameters<typeof publisher.report>[0]) => publisher.report(event, log);
  /** The live publishing channel, for a call of the handler's that must publish now. */
  const live = (call: string) => {
    const pub = consumer?.channel();
    if (!pub) throw new Error(`${call}: not connected to the broker; try again`);
    return pub;
  };
  /** What asks the api over the broker needs: a channel of its own on this connection. */
  const askApi = {
    names,
    open: () => {
      if (!consumer) throw new Error("not connected to the broker; try again");
      return consumer.openChannel();
    },
  };
  const keys = keyAsker(askApi);
  const enqueue = createEnqueue({
    schemas,
    keys,
    publish: (task) => publishTask(live("ctx.enqueue"), names, task, CONFIRM_MS),
    report,
  });
  const publish = createPublish({
    schemas,
    publish: (event) => publishEvent(live("ctx.publish"), names, event, CONFIRM_MS),
  });
  const route = { handler: name, topicsExchange: names.topicsExchange, callback: config.callback };
  const cancels = createCancels({
    onOverflow: (id) =>
      log.error("forgot the cancel of task {id}: more than {max} cancels are kept", {
        id,
        max: CANCELS_MAX,
      }),
  });
  const feed = cancelFeed({
    names,
    cancels,
    log,
    timeoutMs: CATCH_UP_MS,
    onLive: (ids) => port.postMessage({ type: "cancels", ids }),
  });
  const execute = createExecutor({
    handler,
    file: basename(file),
    config,
    maxBodyBytes: message.maxBodyBytes,
    validate: schemas.validator(name),
    ledger,
    cancels,
    outcomes: createOutcomes(
      brokerPort(publisher, names, ledger, handlerStacks(moduleUrl)),
      config,
    ),
    announce: publisher.announce,
    holdsKey: keyHolder(keys, name, config.idempotencyKey),
    context: (task, signal) =>
      createContext(task, signal, {
        report,
        enqueue,
        publish,
        files: task.files && taskFiles(task.id, task.files, askApi),
      }),
  });
  consumer = startConsumer({
    urls: message.amqpUrls,
    name: `warren ${message.prefix} worker ${name}#${message.index}`,
    names,
    handler: name,
    subscribe: config.subscribe,
    prefetch: config.prefetch,
    log,
    beforeConsume: feed.catchUp,
    onDelivery: (delivery, ack) => execute(taskOf(delivery, route, ack, log)),
    onUp: () => port.postMessage({ type: "consuming" }),
    onDown: () => port.postMessage({ type: "disconnected" }),
  });
}
