/**
 * `GET /schedules`: each scheduled handler's schedule, its next tick, and its last (the task it
 * made, and how many missed ticks that one stood for).
 *
 * @module
 */

import type { Hono } from "hono";
import { nextTick } from "../schedule.ts";
import type { ApiDeps } from "./deps.ts";
import { isoTime, taskLinks } from "./task_json.ts";

/** Registers `GET /schedules`. */
export function scheduleRoutes(app: Hono, deps: Pick<ApiDeps, "handlers" | "store">): void {
  app.get("/schedules", async (c) => {
    const last = new Map((await deps.store.lastTicks()).map((tick) => [tick.handler, tick]));
    const now = Date.now();
    const schedules = deps.handlers.flatMap((h) => {
      const schedule = h.config.schedule;
      if (!schedule) return [];
      const tick = last.get(h.name);
      return [{
        handler: h.name,
        cron: schedule.cron,
        timezone: schedule.timezone ?? null,
        payload: schedule.payload,
        next_run: isoTime(nextTick(schedule, now) ?? null),
        last_run: tick
          ? {
            at: isoTime(tick.tick),
            task_id: tick.taskId,
            missed: tick.missed,
            sent: tick.sent,
            links: taskLinks(tick.taskId),
          }
          : null,
      }];
    });
    return c.json({ schedules });
  });
}
