/**
 * Operational routes: GET /healthz (the process answers), GET /readyz (broker connected and every
 * handler consuming) and GET /handlers (config, queue depth, consumers, workers).
 *
 * @module
 */

import { basename, isAbsolute, relative } from "node:path";
import type { Permissions } from "../permissions.ts";
import type { Hono } from "hono";
import type { WorkerStatus } from "../status.ts";
import type { ApiDeps } from "./deps.ts";
import { problem } from "./problem.ts";

/** Registers the health routes: they need nothing but a live event loop and the broker. */
export function healthRoutes(app: Hono, deps: Pick<ApiDeps, "notReady">): void {
  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const reasons = await deps.notReady();
    if (reasons.length === 0) return c.json({ status: "ready" });
    return problem(
      {
        slug: "not-ready",
        title: "Not ready",
        status: 503,
        detail: reasons.join("; "),
        reasons,
      },
      { "retry-after": "5" },
    );
  });
}

/** Registers GET /handlers. */
export function handlerRoutes(app: Hono, deps: ApiDeps): void {
  app.get("/handlers", async (c) => {
    const workers = deps.workers();
    const handlers = await Promise.all(deps.handlers.map(async (h) => {
      const counts = await deps.inspect(h.name);
      const mine = workers?.find((w) => w.handler === h.name);
      return {
        name: h.name,
        file: basename(h.file), // relative to the handlers folder: no server path in answers
        config: {
          workers: h.config.workers,
          prefetch: h.config.prefetch,
          timeout_ms: h.config.timeoutMs,
          retries: h.config.retries,
          backoff_ms: { min: h.config.backoff.minMs, max: h.config.backoff.maxMs },
          schema: h.config.schema ?? null,
          subscribe: h.config.subscribe,
          permissions: permissionsJson(h.config.permissions),
        },
        queue: {
          messages: counts?.messages ?? null,
          consumers: counts?.consumers ?? null,
          dead: counts?.dead ?? null,
        },
        workers: mine ? workersJson(mine) : null,
      };
    }));
    return c.json({ handlers });
  });
}

/** A handler's workers in this process, as /handlers and the dashboard show them. */
export function workersJson(status: WorkerStatus) {
  return {
    running: status.workers,
    consuming: status.consuming,
    restarts: status.restarts,
    crash_looping: status.crashLooping,
    last_error: status.lastError ?? null,
  };
}

/** A handler's permissions as answers show them: paths in the project relative to it. */
export function permissionsJson(permissions: Permissions): Permissions {
  const project = Deno.cwd();
  const shown = (path: string) => {
    const inside = relative(project, path);
    return inside.startsWith("..") || isAbsolute(inside) ? path : `./${inside}`;
  };
  const paths = (list: string[] | true) => list === true ? true : list.map(shown);
  return {
    ...permissions,
    read: paths(permissions.read),
    write: paths(permissions.write),
    ffi: paths(permissions.ffi),
  };
}
