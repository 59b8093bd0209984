/**
 * The api role's parts: the task store, the live feed, the api's broker link, and what the
 * routes get of them (with the metrics and rates kept up to date).
 *
 * Live views hear every change of the store: with one api process (SQLite), what its writer
 * committed; with a shared store (PostgreSQL), what any node committed, through the store's
 * {@linkcode TaskStore.follow}. The metrics count only what this node's writer committed, so
 * summing a counter over the nodes counts every task once.
 *
 * @module
 */

import type { Topology } from "../amqp/topology.ts";
import type { Config } from "../config.ts";
import type { HandlerInfo } from "../handler.ts";
import { openStore } from "../store/open.ts";
import type { TaskChange, TaskStore } from "../store/store.ts";
import { createWriter, type StoreWriter } from "../store/writer.ts";
import { type ApiBroker, connectApiBroker, idempotencySettings } from "./broker.ts";
import type { ApiDeps } from "./deps.ts";
import { createFeed, type Feed } from "./feed.ts";
import { createMetrics } from "./metrics.ts";
import { createRates } from "./rates.ts";
import { recordQueued } from "./intake.ts";
import { type Pruner, startPruner } from "./retention.ts";
import { type Scheduler, startScheduler } from "./scheduler.ts";

/** The parts of the api role. */
export interface ApiParts {
  store: TaskStore;
  writer: StoreWriter;
  feed: Feed;
  broker: ApiBroker;
  /** Deletes ended tasks past their retention. */
  pruner: Pruner;
  /** Makes the scheduled handlers' tasks. */
  scheduler: Scheduler;
  /** Hears the changes this node's writer committed (what the metrics count). */
  committed(listener: (changes: TaskChange[]) => void): void;
  /** Stops following the store, closes the feed. */
  stopFeed(): void;
}

/**
 * Opens the store, and starts the live feed and the api's broker link.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * import { loadConfig } from "../config.ts";
 * const { config } = loadConfig({});
 * const parts = await startApiParts(config, [], topology("warren"), { stopping: () => false });
 * ```
 */
export async function startApiParts(
  config: Config,
  handlers: HandlerInfo[],
  names: Topology,
  options: { stopping(): boolean },
): Promise<ApiParts> {
  const store = await openStore(config.storePath);
  const feed = createFeed();
  const listeners: ((changes: TaskChange[]) => void)[] = [];
  const unfollow = store.follow?.((changes) => feed.publish(changes));
  const writer = createWriter(store, (changes) => {
    if (!unfollow) feed.publish(changes);
    for (const listener of listeners) listener(changes);
  });
  const broker = connectApiBroker({
    config,
    names,
    handlers: handlers.map((h) => ({ name: h.name, subscribe: h.config.subscribe })),
    store,
    writer,
    stopping: options.stopping,
  });
  return {
    store,
    writer,
    feed,
    broker,
    pruner: startPruner(store, handlers, config.retention, config.pruneIntervalMs),
    scheduler: startScheduler({
      handlers,
      ticks: store,
      ready: () => broker.connected() && !broker.blocked() && !options.stopping(),
      enqueue: (task, again) => broker.enqueue(task, { delaySeconds: 0, again }),
      record: (events) => recordQueued({ writer, recordLater: broker.recordLater }, events),
      misfireMs: config.scheduleMisfireMs,
    }),
    committed: (listener) => void listeners.push(listener),
    stopFeed() {
      unfollow?.();
      feed.close();
    },
  };
}

/**
 * What the routes get: the api's parts, and the metrics and rates the live feed keeps.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../config.ts";
 * declare const parts: ApiParts;
 * const deps = apiDeps(loadConfig({}).config, [], parts, {
 *   notReady: () => Promise.resolve([]),
 *   workers: () => undefined,
 * });
 * ```
 */
export function apiDeps(
  config: Config,
  handlers: HandlerInfo[],
  { store, writer, feed, broker, committed }: ApiParts,
  sources: Pick<ApiDeps, "notReady" | "workers">,
): ApiDeps {
  const metrics = createMetrics({
    handlers: handlers.map((h) => h.name),
    inspect: broker.inspect,
    workers: sources.workers,
    connected: broker.connected,
  });
  const rates = createRates();
  committed(metrics.observe);
  feed.subscribeAll(metrics.track);
  feed.subscribeAll(rates.observe);
  return {
    handlers,
    store,
    writer,
    feed,
    maxBodyBytes: config.maxBodyBytes,
    maxWaitMs: config.maxWaitMs,
    retention: config.retention,
    callbacks: config.callbacks,
    idempotency: idempotencySettings(config),
    apiToken: config.apiToken,
    admit: broker.admit,
    enqueue: broker.enqueue,
    publish: broker.publish,
    cancel: broker.cancel,
    recordLater: broker.recordLater,
    dead: broker.dead,
    inspect: broker.inspect,
    connected: broker.connected,
    metrics,
    rates,
    ...sources,
  };
}
