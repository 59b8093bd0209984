/**
 * The HTTP app (Hono on Deno.serve): authentication, the routes, and problem+json for every
 * error, including ones nobody planned for.
 *
 * @module
 */

import { Hono } from "hono";
import { bearerAuth, PUBLIC_PATHS } from "./auth.ts";
import { DASHBOARD_PATHS, dashboardRoutes } from "./dashboard.ts";
import { deadRoutes } from "./dead.ts";
import { DOCS_PATHS, docsRoutes } from "./docs.ts";
import type { ApiDeps } from "./deps.ts";
import { problem } from "./problem.ts";
import { handlerRoutes, healthRoutes } from "./system.ts";
import { taskRoutes } from "./tasks.ts";
import { errorMessage, logger } from "../log.ts";

/**
 * Builds the api: every route of the producer.
 *
 * @example
 * ```ts
 * Deno.serve({ port: 8000 }, createApi(deps).fetch);
 * ```
 */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();
  app.use(deps.metrics.http);
  if (deps.apiToken) {
    app.use(bearerAuth(deps.apiToken, [
      ...PUBLIC_PATHS,
      ...DASHBOARD_PATHS,
      ...DOCS_PATHS,
      "/docs/*",
    ]));
  }
  answerProblems(app);
  healthRoutes(app, deps);
  handlerRoutes(app, deps);
  deadRoutes(app, deps);
  taskRoutes(app, deps);
  dashboardRoutes(app, deps);
  docsRoutes(app, deps.handlers, deps.apiToken !== undefined);
  app.get("/metrics", async (c) => {
    const { body, contentType } = await deps.metrics.render();
    return c.body(body, 200, { "content-type": contentType });
  });
  return app;
}

/** Builds the app of a worker-only process: the health checks alone. */
export function createHealthApi(deps: Pick<ApiDeps, "notReady">): Hono {
  const app = new Hono();
  answerProblems(app);
  healthRoutes(app, deps);
  return app;
}

/** Makes unknown routes and unplanned errors problem+json too. */
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
  app.onError((error, c) => {
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
