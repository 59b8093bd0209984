/**
 * The runtime: wires config, handlers, the broker link, the task store, the workers and the HTTP
 * server into one running Warren, and takes them down in order.
 *
 * @module
 */

import type { Channel, ChannelModel, ConfirmChannel } from "amqplib";
import { bindChannel, openLink } from "./amqp/connection.ts";
import { publishConfirmed } from "./amqp/publish.ts";
import {
  countQueues,
  declareAll,
  migrateEventsQueue,
  type Probe,
  prober,
  topology,
} from "./amqp/topology.ts";
import { createApi, createHealthApi } from "./api/app.ts";
import { type ApiDeps, BusyError, type DeadLetters, UnavailableError } from "./api/deps.ts";
import type { QueueCounts } from "./status.ts";
import { purgeDeadLetters, replayDeadLetters } from "./api/dead_letters.ts";
import { createFeed } from "./api/feed.ts";
import { createMetrics } from "./api/metrics.ts";
import { createRates } from "./api/rates.ts";
import { recordEvents } from "./api/recorder.ts";
import type { Config } from "./config.ts";
import { publishTask } from "./amqp/publish.ts";
import type { HandlerInfo } from "./handler.ts";
import { errorMessage, logger, type LogOptions } from "./log.ts";
import { openSqliteStore } from "./store/sqlite.ts";
import type { TaskStore } from "./store/store.ts";
import { createWriter, type StoreWriter } from "./store/writer.ts";
import { startSupervisor, type Supervisor } from "./worker/supervisor.ts";

/** A running Warren. */
export interface Warren {
  /** Where the HTTP server listens, e.g. `http://127.0.0.1:8000`. */
  url: string;
  /**
   * Stops gracefully: refuses new tasks, stops consuming, lets in-flight handlers finish within
   * the shutdown grace, records their outcomes and closes every connection.
   */
  stop(): Promise<void>;
}

interface ApiSession {
  pub: ConfirmChannel;
  /** For dead-letter operations only: they fetch, ack and put back letters. */
  dead: Channel;
  /** For checks of queues that may be missing. */
  probe: Probe;
}

/**
 * Starts the roles of `config.role` for `handlers`.
 *
 * @example
 * ```ts
 * const warren = await startWarren(config, await discoverHandlers(config.handlersDir), logOptions);
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
  const runsApi = config.role !== "worker";
  const runsWorkers = config.role !== "api";
  let stopping = false;

  for (const h of handlers) {
    const where = runsWorkers
      ? `${h.config.workers} worker(s), prefetch ${h.config.prefetch}`
      : "workers run elsewhere (role api)";
    log.info(`handler {name}: queue {queue}, ${where}`, {
      name: h.name,
      queue: names.taskQueue(h.name),
    });
  }
  if (handlers.length === 0) log.warn("no handlers in {dir}", { dir: config.handlersDir });

  const store = runsApi ? await openSqliteStore(config.storePath) : undefined;
  const feed = createFeed();
  const writer = store && createWriter(store, (changes) => feed.publish(changes));

  const link = runsApi
    ? openLink<ApiSession>({
      url: config.amqpUrl,
      name: `warren ${config.prefix} api`,
      log: logger("amqp"),
      setup: async (model) => {
        const pub = bindChannel(model, await model.createConfirmChannel(), log);
        const ch = bindChannel(model, await model.createChannel(), log);
        const dead = bindChannel(model, await model.createChannel(), log);
        await declareAll(ch, names, handlers.map((h) => h.name));
        if (writer) {
          await moveLegacyEvents(model, pub);
          const events = bindChannel(model, await model.createChannel(), log);
          await recordEvents(events, { writer, names, log: logger("recorder") });
        }
        return { pub, dead, probe: prober(model) };
      },
    })
    : undefined;

  const supervisor: Supervisor | undefined = runsWorkers
    ? startSupervisor({
      handlers,
      amqpUrl: config.amqpUrl,
      prefix: config.prefix,
      maxBodyBytes: config.maxBodyBytes,
      log: logOptions,
    })
    : undefined;

  let pending = 0;

  /** Dead-letter operations, one at a time (they share a channel), each on the live session. */
  function deadLetters(store: TaskStore, writer: StoreWriter): DeadLetters {
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(action: (session: ApiSession) => Promise<T>): Promise<T> => {
      const next = queue.then(() => {
        const session = link?.session();
        if (!session) throw new UnavailableError("not connected to the broker");
        return action(session);
      });
      queue = next.catch(() => {});
      return next;
    };
    return {
      replay: (handler, id) =>
        serial(async (s) => {
          const { ids } = await replayDeadLetters(s.dead, s.pub, names, handler, {
            id,
            timeoutMs: config.publishTimeoutMs,
            onReplayed: (letter) =>
              writer.write([{
                type: "queued",
                id: letter.id,
                handler,
                attempt: 0,
                replay: letter.replay,
                at: Date.now(),
              }]),
          });
          // Not in the queue after all (purged elsewhere, or its letter never sent): the list
          // must stop showing it.
          if (id !== undefined && ids.length === 0) await store.dropDeadLetters([id]);
          return ids;
        }),
      purge: (handler) =>
        serial(async (s) => {
          const ids = await purgeDeadLetters(s.dead, names, handler);
          await store.dropDeadLetters(ids);
          return ids.length;
        }),
    };
  }

  const inspect = async (handler: string): Promise<QueueCounts | undefined> => {
    const session = link?.session();
    if (!session) return undefined;
    try {
      return await countQueues(session.probe, names, handler);
    } catch {
      return undefined;
    }
  };

  /**
   * Whether a task can be enqueued now: returns the live session, or throws why not (before a
   * POST reads its body, and again when it publishes).
   */
  const admit = (): ApiSession => {
    if (stopping) throw new UnavailableError("Warren is shutting down");
    const session = link?.session();
    if (!session) throw new UnavailableError("not connected to the broker");
    if (link?.blocked()) {
      throw new UnavailableError("the broker is blocking publishers (memory or disk alarm)");
    }
    if (pending >= config.maxPending) {
      throw new BusyError(`${pending} tasks await the broker's confirm (WARREN_MAX_PENDING)`);
    }
    return session;
  };

  const workers = () => supervisor?.status();
  const connected = () => link?.session() !== undefined;

  const notReady = async (): Promise<string[]> => {
    const reasons: string[] = [];
    if (stopping) reasons.push("draining: shutting down, in-flight tasks are finishing");
    if (link && !link.session()) reasons.push("not connected to the broker");
    if (link?.blocked()) reasons.push("the broker is blocking publishers (memory or disk alarm)");
    if (supervisor) {
      for (const status of supervisor.status()) {
        if (status.crashLooping) {
          reasons.push(
            `handler ${status.handler}: its workers keep dying (last: ${status.lastError})`,
          );
        }
        if (status.consuming > 0) continue;
        const why = status.lastError ? ` (last error: ${status.lastError})` : "";
        reasons.push(`handler ${status.handler}: no worker consuming${why}`);
      }
    } else if (link?.session()) {
      for (const h of handlers) {
        const counts = await inspect(h.name);
        if (counts?.consumers === 0) {
          reasons.push(`handler ${h.name}: no consumer on queue ${names.taskQueue(h.name)}`);
        }
      }
    }
    return reasons;
  };

  const deps: ApiDeps | undefined = store && writer && {
    handlers,
    store,
    writer,
    feed,
    maxBodyBytes: config.maxBodyBytes,
    apiToken: config.apiToken,
    admit,
    enqueue: async (task, { delaySeconds }) => {
      const session = admit();
      pending++;
      try {
        await publishTask(session.pub, names, task, config.publishTimeoutMs, { delaySeconds });
      } catch (error) {
        throw new UnavailableError(errorMessage(error), true);
      } finally {
        pending--;
      }
    },
    dead: deadLetters(store, writer),
    inspect,
    notReady,
    workers,
    connected,
    metrics: createMetrics({ handlers: handlers.map((h) => h.name), inspect, workers, connected }),
    rates: createRates(),
  };
  if (deps) {
    feed.subscribeAll(deps.metrics.observe);
    feed.subscribeAll(deps.rates.observe);
  }
  const app = deps ? createApi(deps) : createHealthApi({ notReady });

  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: () => {},
  }, app.fetch);
  const { hostname, port } = server.addr;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  log.info("listening on {url}", { url });

  return {
    url,
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info("stopping: no new tasks; waiting up to {grace} ms for running ones", {
        grace: config.shutdownGraceMs,
      });
      // Until the end the server answers: POST with 503 and Retry-After, /readyz with 503
      // "draining", reads as usual. Its listener closes last, so no client is refused a
      // connection while this process still runs.
      await supervisor?.stop(config.shutdownGraceMs);
      if (link && writer) await drainEvents(link.session()?.probe, names.eventsQueue);
      await writer?.flush();
      feed.close();
      await link?.close();
      await server.shutdown();
      await store?.close();
      log.info("stopped");
    },
  };

  /** Moves the events of an older Warren's classic events queue, if one is there (once). */
  async function moveLegacyEvents(model: ChannelModel, pub: ConfirmChannel): Promise<void> {
    const probe = await model.createChannel();
    probe.on("error", () => {}); // checking a missing queue closes the probe: that is the answer
    const moved = await migrateEventsQueue(
      probe,
      names,
      (message) =>
        publishConfirmed(pub, "", names.eventsQueue, message.content, {
          contentType: message.properties.contentType,
          type: message.properties.type,
          persistent: message.properties.deliveryMode === 2,
        }, config.publishTimeoutMs),
    );
    if (moved !== undefined) {
      log.warn(
        "moved {moved} event message(s) from the classic queue of an older Warren to the " +
          "quorum queue {queue}, and deleted the classic one",
        { moved, queue: names.eventsQueue },
      );
    }
  }

  /** Gives the recorder up to two seconds to take in the events the workers sent last. */
  async function drainEvents(probe: Probe | undefined, queue: string): Promise<void> {
    const deadline = Date.now() + 2_000;
    while (probe && Date.now() < deadline) {
      try {
        if ((await probe((ch) => ch.checkQueue(queue))).messageCount === 0) return;
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
