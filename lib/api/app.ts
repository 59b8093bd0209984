/**
 * The HTTP app (Hono on Deno.serve): authentication, the routes, and problem+json for every
 * error, including ones nobody planned for.
 *
 * @module
 */

import { Hono } from "hono";
import { bearerAuth } from "./auth.ts";
import { deadRoutes } from "./dead.ts";
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
  const app = base(deps.apiToken);
  healthRoutes(app, deps);
  handlerRoutes(app, deps);
  deadRoutes(app, deps);
  taskRoutes(app, deps);
  return app;
}

/** Builds the app of a worker-only process: the health checks alone. */
export function createHealthApi(deps: Pick<ApiDeps, "notReady">): Hono {
  const app = base(undefined);
  healthRoutes(app, deps);
  return app;
}

function base(apiToken: string | undefined): Hono {
  const log = logger("api");
  const app = new Hono();
  if (apiToken) app.use(bearerAuth(apiToken));
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
  return app;
}
