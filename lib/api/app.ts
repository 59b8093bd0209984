/**
 * The HTTP app (Hono on Deno.serve): the public routes (health checks for probes; the dashboard
 * page, the API docs and their assets, which hold no data; the WebSocket, which checks the token
 * itself, as browsers cannot send it as a header), then every other route on a sub-app
 * behind bearer authentication when `WARREN_API_TOKEN` is set, and problem+json for every error:
 * the api's domain errors (see `errors.ts`) answered once, here, and ones nobody planned for.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { errorMessage, logger } from "../log.ts";
import { bearerAuth } from "./auth.ts";
import { dashboardPages, dashboardStream } from "./dashboard.ts";
import { cancelRoutes } from "./cancel.ts";
import { scheduleRoutes } from "./schedules.ts";
import { deadRoutes } from "./dead.ts";
import type { ApiDeps } from "./deps.ts";
import { docsRoutes } from "./docs.ts";
import { eventRoutes } from "./events.ts";
import { answerTo, UnavailableError } from "./errors.ts";
import { problem } from "./problem.ts";
import { handlerRoutes, healthRoutes } from "./system.ts";
import { taskFileRoutes } from "./task_files.ts";
import { taskRoutes } from "./tasks.ts";
import { wsRoutes } from "./ws.ts";

/**
 * Builds the api: every route of the producer.
 *
 * @example
 * ```ts
 * declare const deps: import("./deps.ts").ApiDeps;
 * Deno.serve({ port: 8000 }, createApi(deps).fetch);
 * ```
 */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();
  app.use(deps.metrics.http);
  answerProblems(app);
  // Public: probes need no secret, and the pages hold no data (what they show needs the token).
  healthRoutes(app, deps);
  dashboardPages(app);
  docsRoutes(app, deps.handlers, deps.apiToken !== undefined);
  wsRoutes(app, deps); // checks the token itself: browsers cannot send it as a header

  // Everything else, unknown routes included, needs the token when one is set.
  app.route("/", protectedRoutes(deps));
  return app;
}

/** The routes that hold data: behind bearer authentication when a token is set. */
function protectedRoutes(deps: ApiDeps): Hono {
  const api = new Hono();
  if (deps.apiToken) api.use(bearerAuth(deps.apiToken));
  taskRoutes(api, deps);
  cancelRoutes(api, deps);
  scheduleRoutes(api, deps);
  taskFileRoutes(api, deps);
  eventRoutes(api, deps);
  handlerRoutes(api, deps);
  deadRoutes(api, deps);
  dashboardStream(api, deps);
  api.get("/metrics", async (c) => {
    const { body, contentType } = await deps.metrics.render();
    return c.body(body, 200, { "content-type": contentType });
  });
  return api;
}

/**
 * Builds the app of a worker-only process: the health checks alone.
 *
 * @example
 * ```ts
 * const app = createHealthApi({ notReady: () => Promise.resolve([]) });
 * ```
 */
export function createHealthApi(deps: Pick<ApiDeps, "notReady">): Hono {
  const app = new Hono();
  answerProblems(app);
  healthRoutes(app, deps);
  return app;
}

/** Makes unknown routes, the api's domain errors and unplanned errors problem+json. */
function answerProblems(app: Hono): void {
  const log = logger("api");
  app.notFound((c) =>
    problem({
      slug: "not-found",
      title: "Not found",
      status: 404,
      detail: `no route ${c.req.method} ${c.req.path}`,
    })
  );
  app.onError((error, c: Context) => {
    const answer = answerTo(error);
    if (answer) {
      if (error instanceof UnavailableError) {
        log.warn("{method} {path} refused: {reason}", {
          method: c.req.method,
          path: c.req.path,
          reason: error.message,
        });
      }
      return answer;
    }
    log.error("{method} {path} failed: {error}", {
      method: c.req.method,
      path: c.req.path,
      error: errorMessage(error),
    });
    return problem({
      slug: "internal",
      title: "Internal error",
      status: 500,
      detail: "the server failed to answer; its log says why",
    });
  });
}
