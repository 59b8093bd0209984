/**
 * The runtime: wires config, handlers, the api's parts (store, live feed, broker link, metrics),
 * the workers and the HTTP server into one running Warren, and takes them down in order.
 *
 * @module
 */

import { type Topology, topology } from "./amqp/topology.ts";
import { createApi, createHealthApi } from "./api/app.ts";
import { readiness } from "./api/readiness.ts";
import { apiDeps, startApiParts } from "./api/role.ts";
import type { Config } from "./config.ts";
import { urlProblem } from "./callback/destination.ts";
import { HandlerError, type HandlerInfo } from "./handler.ts";
import { logger, type LogOptions } from "./log.ts";
import { startSupervisor } from "./worker/supervisor.ts";

/** A running Warren. */
export interface Warren {
  /** Where the HTTP server listens, e.g. `http://127.0.0.1:8000`. */
  url: string;
  /**
   * Stops gracefully: refuses new tasks, stops consuming, lets in-flight handlers finish within
   * the shutdown grace, records their outcomes, closes every connection, and closes the HTTP
   * listener last.
   */
  stop(): Promise<void>;
}

/**
 * Starts the roles of `config.role` for `handlers`.
 *
 * @example
 * ```ts
 * import { discoverHandlers } from "./discover.ts";
 * import { loadConfig } from "./config.ts";
 * const { config } = loadConfig(Deno.env.toObject());
 * const log = { level: "info" as const, format: "text" as const, secrets: [] };
 * const warren = await startWarren(config, await discoverHandlers(config.handlersDir), log);
 * console.log(warren.url);
 * await warren.stop();
 * ```
 */
export async function startWarren(
  config: Config,
  handlers: HandlerInfo[],
  logOptions: LogOptions,
): Promise<Warren> {
  const log = logger("runtime");
  const names = topology(config.prefix);
  if (config.role !== "worker") checkCallbacks(config, handlers);
  logHandlers(config, handlers, names);
  let stopping = false;

  const api = config.role === "worker" ? undefined : await startApiParts(config, handlers, names, {
    stopping: () => stopping,
  });
  const supervisor = config.role === "api" ? undefined : startSupervisor({
    handlers,
    amqpUrls: config.amqpUrls,
    prefix: config.prefix,
    maxBodyBytes: config.maxBodyBytes,
    log: logOptions,
  });
  const notReady = readiness({
    stopping: () => stopping,
    broker: api?.broker,
    workers: supervisor && (() => supervisor.status()),
    handlers: handlers.map((h) => h.name),
    names,
  });
  const app = api
    ? createApi(apiDeps(config, handlers, api, { notReady, workers: () => supervisor?.status() }))
    : createHealthApi({ notReady });

  const server = Deno.serve(
    { hostname: config.host, port: config.port, onListen: () => {} },
    app.fetch,
  );
  const { hostname, port } = server.addr;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  log.info("listening on {url}", { url });

  let stopped: Promise<void> | undefined;
  return {
    url,
    stop: () =>
      stopped ??= (async () => {
        log.info("stopping: no new tasks; waiting up to {grace} ms for running ones", {
          grace: config.shutdownGraceMs,
        });
        // First, while tasks are still admitted: a tick it claimed is published.
        await api?.scheduler.stop();
        stopping = true;
        // Until the end the server answers: POST with 503 and Retry-After, /readyz with 503
        // "draining", reads as usual. Its listener closes last, so no client is refused a
        // connection while this process still runs.
        await supervisor?.stop(config.shutdownGraceMs);
        await api?.pruner.stop();
        await api?.broker.drainEvents();
        await api?.writer.flush();
        api?.stopFeed();
        await api?.broker.close();
        await server.shutdown();
        await api?.store.close();
        log.info("stopped");
      })(),
  };
}

/**
 * Refuses a handler's default callback that the api cannot send: no secret to sign it with, or a
 * destination that is not allowed.
 */
function checkCallbacks(config: Config, handlers: HandlerInfo[]): void {
  for (const h of handlers) {
    if (h.config.callback === undefined) continue;
    const where = `${h.name}: config.callback`;
    if (config.callbacks.secret === undefined) {
      throw new HandlerError(`${where} needs WARREN_WEBHOOK_SECRET (whsec_…) to sign callbacks`);
    }
    const problem = urlProblem(h.config.callback, config.callbacks.allow);
    if (problem) throw new HandlerError(`${where}: ${problem}`);
  }
}

/** One line per handler at start-up: its queue, and where its workers run. */
function logHandlers(config: Config, handlers: HandlerInfo[], names: Topology): void {
  const log = logger("runtime");
  for (const h of handlers) {
    const where = config.role === "api"
      ? "workers run elsewhere (role api)"
      : `${h.config.workers} worker(s), prefetch ${h.config.prefetch}`;
    const topics = h.config.subscribe.length
      ? `; subscribes to ${h.config.subscribe.join(", ")}`
      : "";
    log.info(`handler {name}: queue {queue}, ${where}${topics}`, {
      name: h.name,
      queue: names.taskQueue(h.name),
    });
  }
  if (handlers.length === 0) log.warn("no handlers in {dir}", { dir: config.handlersDir });
}
