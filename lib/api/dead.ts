/**
 * Dead-letter routes: list a handler's dead tasks (GET /handlers/{name}/dead), replay one
 * (POST /handlers/{name}/dead/{id}/replay) or all (POST /handlers/{name}/dead/replay), and purge
 * them (DELETE /handlers/{name}/dead).
 *
 * @module
 */

import type { Context, Hono } from "hono";
import type { DeadLetter } from "../deadletter.ts";
import { errorMessage } from "../log.ts";
import { type ApiDeps, UnavailableError } from "./deps.ts";
import { problem, unavailable } from "./problem.ts";
import { badQuery, isoTime, unknownHandler } from "./tasks.ts";

/** Registers the dead-letter routes. */
export function deadRoutes(app: Hono, deps: ApiDeps): void {
  const names = new Set(deps.handlers.map((h) => h.name));
  const known = (c: Context) => names.has(c.req.param("name") ?? "");
  const refuse = (c: Context) => unknownHandler(c.req.param("name") ?? "", [...names]);

  app.get("/handlers/:name/dead", (c) => {
    if (!known(c)) return refuse(c);
    const limitText = c.req.query("limit") ?? "50";
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 1000) {
      return badQuery(`limit must be a whole number from 1 to 1000 (got "${limitText}")`);
    }
    return guard(async () => {
      const { total, letters } = await deps.dead.list(c.req.param("name"), limit);
      return c.json({ handler: c.req.param("name"), total, tasks: letters.map(letterJson) });
    });
  });

  app.post("/handlers/:name/dead/replay", (c) => {
    if (!known(c)) return refuse(c);
    return guard(async () => {
      const ids = await deps.dead.replay(c.req.param("name"));
      return c.json({ replayed: ids.length, ids });
    });
  });

  app.post("/handlers/:name/dead/:id/replay", (c) => {
    if (!known(c)) return refuse(c);
    const { name, id } = c.req.param();
    return guard(async () => {
      const ids = await deps.dead.replay(name, id);
      if (ids.length === 0) {
        return problem({
          slug: "unknown-dead-task",
          title: "Not a dead task",
          status: 404,
          detail: `no task "${id}" in the dead letters of ${name}; GET /handlers/${name}/dead ` +
            "lists them",
        });
      }
      return c.json({ replayed: 1, ids });
    });
  });

  app.delete("/handlers/:name/dead", (c) => {
    if (!known(c)) return refuse(c);
    return guard(async () => c.json({ purged: await deps.dead.purge(c.req.param("name")) }));
  });
}

async function guard(action: () => Promise<Response>): Promise<Response> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof UnavailableError) return unavailable(errorMessage(error));
    throw error;
  }
}

function letterJson(letter: DeadLetter) {
  return {
    id: letter.id,
    payload: letter.payload,
    error: letter.error,
    attempts: letter.attempts,
    replays: letter.replay,
    created_at: isoTime(letter.createdAt),
    failed_at: isoTime(letter.failedAt),
    links: { task: `/tasks/${letter.id}` },
  };
}
