/**
 * Dead-letter routes: list a handler's dead tasks from the store (GET /handlers/{name}/dead: the
 * queue itself is never touched for a look, so looking cannot wear a letter out), replay one
 * (POST /handlers/{name}/dead/{id}/replay) or all (POST /handlers/{name}/dead/replay), and purge
 * them (DELETE /handlers/{name}/dead).
 *
 * @module
 */

import type { Hono, MiddlewareHandler } from "hono";
import type { TaskSummary } from "../store/store.ts";
import type { ApiDeps } from "./deps.ts";
import { problem } from "./problem.ts";
import { pageOf, readPage } from "./page.ts";
import { summaryJson } from "./task_json.ts";
import { badQuery, unknownHandler } from "./tasks.ts";

/** Registers the dead-letter routes. */
export function deadRoutes(app: Hono, deps: ApiDeps): void {
  const names = deps.handlers.map((h) => h.name);
  const knownHandler: MiddlewareHandler = async (c, next) => {
    const name = c.req.param("name") ?? "";
    if (!names.includes(name)) return unknownHandler(name, names);
    return await next();
  };
  app.use("/handlers/:name/dead", knownHandler);
  app.use("/handlers/:name/dead/*", knownHandler);

  app.get("/handlers/:name/dead", async (c) => {
    const page = readPage(c);
    if (typeof page === "string") return badQuery(page);
    const handler = c.req.param("name");
    const [{ tasks, next }, counts] = await Promise.all([
      deps.store.list({ handler, deadLetters: true, ...page }),
      deps.inspect(handler),
    ]);
    return c.json({
      handler,
      total: counts?.dead ?? null,
      tasks: tasks.map(letterJson),
      ...pageOf(c, next),
    });
  });

  app.post("/handlers/:name/dead/replay", async (c) => {
    const ids = await deps.dead.replay(c.req.param("name"));
    return c.json({ replayed: ids.length, ids });
  });

  app.post("/handlers/:name/dead/:id/replay", async (c) => {
    const { name, id } = c.req.param();
    const ids = await deps.dead.replay(name, id);
    if (ids.length > 0) return c.json({ replayed: 1, ids });
    return problem({
      slug: "unknown-dead-task",
      title: "Not a dead task",
      status: 404,
      detail: `no task "${id}" in the dead letters of ${name}; GET /handlers/${name}/dead ` +
        "lists them",
    });
  });

  app.delete("/handlers/:name/dead", async (c) => {
    return c.json({ purged: await deps.dead.purge(c.req.param("name")) });
  });
}

/** A dead letter as the list shows it: the task's summary, with when it failed. */
function letterJson(task: TaskSummary) {
  const { finished_at, ...summary } = summaryJson(task);
  return { ...summary, failed_at: finished_at };
}
