/**
 * Prometheus metrics (GET /metrics, text exposition format through prom-client): task counters
 * and durations by handler, fed by the live feed; events published by topic and the tasks events
 * made by handler; queue depth, consumers, workers and the broker
 * connection, read when scraped; HTTP requests by route and status with their latency.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { TaskState } from "../events.ts";
import type { TaskChange } from "../store/store.ts";
import type { HistoryEntry } from "../store/task.ts";
import type { QueueCounts, WorkerStatus } from "../status.ts";

/** Where the metrics read what they report at scrape time. */
export interface MetricSources {
  handlers: string[];
  inspect(handler: string): Promise<QueueCounts | undefined>;
  workers(): WorkerStatus[] | undefined;
  connected(): boolean;
}

/** See {@linkcode createMetrics}. */
export interface Metrics {
  /**
   * Counts a batch of task changes this node committed (counters and durations): over several
   * api nodes, each change is counted by the one node that recorded it, so sums add up.
   */
  observe(changes: TaskChange[]): void;
  /**
   * Follows every change any node committed (subscribe it to the feed), for the gauge of tasks
   * running now: every node shows the whole fleet's.
   */
  track(changes: TaskChange[]): void;
  /** Counts an event this node published (`POST /events/{topic}`). */
  published(topic: string): void;
  /** Times and counts every HTTP request. */
  http: MiddlewareHandler;
  /** The exposition text and its content type. */
  render(): Promise<{ body: string; contentType: string }>;
}

/** Tasks tracked as in flight at most; beyond, the oldest are forgotten. */
const IN_FLIGHT_MAX = 100_000;
/** Topics counted by name at most; events of further topics are counted as `other`. */
export const TOPICS_MAX = 1_000;

/**
 * Creates Warren's metrics in a registry of their own.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createFeed } from "./feed.ts";
 * const metrics = createMetrics({
 *   handlers: ["hello"],
 *   inspect: () => Promise.resolve(undefined),
 *   workers: () => undefined,
 *   connected: () => true,
 * });
 * const feed = createFeed();
 * feed.subscribeAll(metrics.observe);
 * feed.subscribeAll(metrics.track);
 * new Hono().use(metrics.http);
 * ```
 */
export function createMetrics(sources: MetricSources): Metrics {
  const registers = [new Registry()];
  const byHandler = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ["handler"], registers });
  const counters: Record<CounterName, Counter> = {
    enqueued: byHandler("warren_tasks_enqueued_total", "Tasks enqueued (replays included)."),
    started: byHandler("warren_tasks_started_total", "Attempts started."),
    succeeded: byHandler("warren_tasks_succeeded_total", "Tasks that succeeded."),
    failed: byHandler("warren_tasks_failed_total", "Attempts that failed."),
    retried: byHandler("warren_tasks_retried_total", "Failed attempts scheduled to retry."),
    dead: byHandler("warren_tasks_dead_total", "Tasks moved to the dead letters."),
    cancelled: byHandler("warren_tasks_cancelled_total", "Tasks cancelled."),
  };
  const eventTasks = byHandler(
    "warren_event_tasks_total",
    "Tasks made from events (POST /events, ctx.publish, other AMQP clients).",
  );
  const callbacks = new Counter({
    name: "warren_callbacks_total",
    help: "Deliveries of task callbacks, by outcome (delivered, or failed: retried or given up).",
    labelNames: ["handler", "outcome"],
    registers,
  });
  const events = new Counter({
    name: "warren_events_published_total",
    help: `Events this api published, by topic (past ${TOPICS_MAX} topics, as "other").`,
    labelNames: ["topic"],
    registers,
  });
  const topics = new Set<string>();
  const duration = new Histogram({
    name: "warren_task_duration_seconds",
    help: "Time from an attempt's start to its outcome.",
    labelNames: ["handler", "outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1500],
    registers,
  });
  const running = new Map<string, string>();
  new Gauge({
    name: "warren_tasks_in_flight",
    help: "Attempts running now.",
    labelNames: ["handler"],
    registers,
    collect() {
      this.reset();
      for (const handler of sources.handlers) this.set({ handler }, 0);
      for (const handler of running.values()) this.inc({ handler });
    },
  });

  // One broker query per handler and scrape, shared by the three queue gauges.
  let scraped: Map<string, Promise<QueueCounts | undefined>> | undefined;
  const countsOf = (handler: string) => {
    scraped ??= new Map();
    let counts = scraped.get(handler);
    if (!counts) scraped.set(handler, counts = sources.inspect(handler));
    return counts;
  };
  const queueGauge = (name: string, help: string, pick: (c: QueueCounts) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["handler"],
      registers,
      async collect() {
        this.reset();
        for (const handler of sources.handlers) {
          const counts = await countsOf(handler);
          if (counts) this.set({ handler }, pick(counts));
        }
      },
    });
  queueGauge("warren_queue_messages", "Tasks waiting in a handler's queue.", (c) => c.messages);
  queueGauge("warren_queue_consumers", "Consumers on a handler's queue.", (c) => c.consumers);
  queueGauge("warren_dead_letters", "Tasks in a handler's dead-letter queue.", (c) => c.dead);

  const restartsSeen = new Map<string, number>();
  const restarts = new Counter({
    name: "warren_worker_restarts_total",
    help: "Workers replaced after they died.",
    labelNames: ["handler"],
    registers,
    collect() {
      for (const status of sources.workers() ?? []) {
        const delta = status.restarts - (restartsSeen.get(status.handler) ?? 0);
        restartsSeen.set(status.handler, status.restarts);
        this.inc({ handler: status.handler }, delta);
      }
    },
  });
  for (const handler of sources.handlers) restarts.inc({ handler }, 0);
  new Gauge({
    name: "warren_workers_consuming",
    help: "Workers of this process whose consumer is up.",
    labelNames: ["handler"],
    registers,
    collect() {
      for (const status of sources.workers() ?? []) {
        this.set({ handler: status.handler }, status.consuming);
      }
    },
  });
  new Gauge({
    name: "warren_broker_connected",
    help: "1 while the api's broker connection is up.",
    registers,
    collect() {
      this.set(sources.connected() ? 1 : 0);
    },
  });

  const requests = new Counter({
    name: "warren_http_requests_total",
    help: "HTTP requests answered.",
    labelNames: ["method", "route", "status"],
    registers,
  });
  const latency = new Histogram({
    name: "warren_http_request_duration_seconds",
    help: "Time to answer an HTTP request (until the response starts).",
    labelNames: ["method", "route"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers,
  });

  return {
    observe(changes) {
      for (const { task, steps } of changes) {
        const labels = { handler: task.handler };
        for (const step of steps) {
          if (step.state === "callback") {
            callbacks.inc({ ...labels, outcome: step.error ? "failed" : "delivered" });
            continue;
          }
          if (step.state === "cancel") continue; // asked only: its end is counted
          for (const name of COUNTERS[step.state]) counters[name].inc(labels);
          if (step.state === "queued" && task.event && !step.replay) eventTasks.inc(labels);
          const seconds = attemptSeconds(task, step);
          if (seconds !== undefined) duration.observe({ ...labels, outcome: step.state }, seconds);
        }
      }
    },

    track(changes) {
      for (const { task } of changes) {
        if (task.state === "running") {
          running.set(task.id, task.handler);
          if (running.size > IN_FLIGHT_MAX) running.delete(running.keys().next().value!);
        } else {
          running.delete(task.id);
        }
      }
    },

    published(topic) {
      if (!topics.has(topic) && topics.size < TOPICS_MAX) topics.add(topic);
      events.inc({ topic: topics.has(topic) ? topic : "other" });
    },

    http: async (c, next) => {
      const start = performance.now();
      await next();
      const matched = routePath(c);
      const route = c.res.status === 404 && (matched === "*" || matched === "/*")
        ? "unmatched"
        : matched;
      const labels = { method: c.req.method, route };
      requests.inc({ ...labels, status: String(c.res.status) });
      latency.observe(labels, (performance.now() - start) / 1000);
    },

    async render() {
      const registry = registers[0];
      scraped = undefined;
      try {
        return { body: await registry.metrics(), contentType: registry.contentType };
      } finally {
        scraped = undefined;
      }
    },
  };
}

type CounterName =
  | "enqueued"
  | "started"
  | "succeeded"
  | "failed"
  | "retried"
  | "dead"
  | "cancelled";

/** The counters a step of a task's history moves; each step is counted once, when recorded. */
const COUNTERS: Record<TaskState, CounterName[]> = {
  queued: ["enqueued"],
  running: ["started"],
  retrying: ["failed", "retried"],
  succeeded: ["succeeded"],
  dead: ["failed", "dead"],
  cancelled: ["cancelled"],
};

/** How long the attempt that `outcome` ended took, from the task's history. */
function attemptSeconds(task: TaskChange["task"], outcome: HistoryEntry): number | undefined {
  if (outcome.state === "queued" || outcome.state === "running") return undefined;
  const begin = task.history.find((h) =>
    h.state === "running" && h.attempt === outcome.attempt &&
    (h.replay ?? 0) === (outcome.replay ?? 0)
  );
  return begin ? Math.max(0, outcome.at - begin.at) / 1000 : undefined;
}
