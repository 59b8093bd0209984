/**
 * The dashboard: GET / serves a page (HTML, JS and CSS in `lib/api/dashboard/`, no build step,
 * nothing from a CDN) that reads the api with the token it asks for once, and GET /stream feeds
 * it live over Server-Sent Events: changed tasks every half second, handler stats every two.
 *
 * @module
 */

import type { Hono } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import type { TaskRecord } from "../store/store.ts";
import { summarize } from "../store/task.ts";
import type { ApiDeps } from "./deps.ts";
import { permissionsJson, workersJson } from "./system.ts";
import { summaryJson } from "./task_json.ts";

const ASSETS: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

const TASKS_EVERY_MS = 500;
const STATS_EVERY = 4; // ticks of TASKS_EVERY_MS
/** Changed tasks one tick sends at most (the newest). */
const TASKS_PER_TICK = 200;

/**
 * Registers GET / and the dashboard's assets: public, as they hold no data.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * dashboardPages(new Hono());
 * ```
 */
export function dashboardPages(app: Hono): void {
  const assets = new Map<string, string>();
  const asset = async (name: string) => {
    let text = assets.get(name);
    if (text === undefined) {
      text = await Deno.readTextFile(new URL(`./dashboard/${name}`, import.meta.url));
      assets.set(name, text);
    }
    return text;
  };
  const serve = (name: string) => async () =>
    new Response(await asset(name), {
      headers: { "content-type": ASSETS[name], "cache-control": "no-cache" },
    });

  app.get("/", serve("index.html"));
  app.get("/dashboard/app.js", serve("app.js"));
  app.get("/dashboard/style.css", serve("style.css"));
}

/**
 * Registers GET /stream, the dashboard's live feed: changed tasks every half second, handler
 * stats every two.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * declare const deps: import("./deps.ts").ApiDeps;
 * dashboardStream(new Hono(), deps);
 * ```
 */
export function dashboardStream(app: Hono, deps: ApiDeps): void {
  // Every open dashboard shares one reading of the broker per second.
  let cached: { at: number; stats: Promise<unknown> } | undefined;
  const currentStats = () => {
    if (!cached || Date.now() - cached.at > 1_000) {
      cached = { at: Date.now(), stats: stats(deps) };
    }
    return cached.stats;
  };

  app.get("/stream", (c) =>
    streamSSE(c, async (stream: SSEStreamingApi) => {
      const changed = new Map<string, TaskRecord>();
      let open = true;
      const unsubscribe = deps.feed.subscribeAll((changes) => {
        for (const { task } of changes) {
          changed.delete(task.id);
          changed.set(task.id, task);
        }
        while (changed.size > TASKS_PER_TICK) changed.delete(changed.keys().next().value!);
      });
      const stop = () => {
        open = false;
      };
      const forget = deps.feed.onClose(stop);
      stream.onAbort(stop);
      try {
        await stream.writeSSE({ event: "stats", data: JSON.stringify(await currentStats()) });
        for (let tick = 1; open; tick++) {
          await stream.sleep(TASKS_EVERY_MS);
          if (changed.size > 0) {
            const tasks = [...changed.values()].map((task) => summaryJson(summarize(task)));
            changed.clear();
            await stream.writeSSE({ event: "tasks", data: JSON.stringify(tasks) });
          }
          if (tick % STATS_EVERY === 0) {
            await stream.writeSSE({ event: "stats", data: JSON.stringify(await currentStats()) });
          }
        }
      } finally {
        unsubscribe();
        forget();
      }
    }));
}

/** What the dashboard shows of the whole: broker, handlers, rates. */
async function stats(deps: ApiDeps) {
  const workers = deps.workers();
  const { perMinute, eventsPerMinute, series } = deps.rates.snapshot();
  const handlers = await Promise.all(deps.handlers.map(async (h) => {
    const counts = await deps.inspect(h.name);
    const mine = workers?.find((w) => w.handler === h.name);
    const minute = perMinute[h.name];
    return {
      name: h.name,
      subscribe: h.config.subscribe,
      permissions: permissionsJson(h.config.permissions),
      queue: counts ?? null,
      workers: mine ? workersJson(mine) : null,
      per_minute: {
        succeeded: minute?.succeeded ?? 0,
        failed: minute?.failed ?? 0,
        from_events: minute?.fromEvents ?? 0,
      },
    };
  }));
  return {
    at: new Date().toISOString(),
    broker: { connected: deps.connected() },
    events_per_minute: eventsPerMinute,
    handlers,
    series,
  };
}
