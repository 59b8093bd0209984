/**
 * Schedules: a handler that declares `schedule: "0 * * * *"` gets one task per tick of that cron
 * expression (parsed by `croner`). This module reads the declaration and works out the ticks; the
 * api's scheduler (`api/scheduler.ts`) turns them into tasks.
 *
 * **Misfires.** Ticks are worked out from the last one that made a task. Ticks that fell due less
 * than the misfire bound ago (`WARREN_SCHEDULE_MISFIRE`, a minute) each make a task: a slow wake
 * skips none. When the oldest due tick is older than that, everything was down: the missed ticks
 * collapse into one task, for the latest of them, which says how many it stands for.
 *
 * @module
 */

import { Cron } from "croner";

/** A handler's schedule as its config writes it. */
export type ScheduleConfig = string | { cron: string; timezone?: string; payload?: unknown };

/** A schedule, checked. */
export interface Schedule {
  /** Five fields (minute first) or six (second first). */
  cron: string;
  /** An IANA time zone the fields are read in; undefined for UTC. */
  timezone: string | undefined;
  /** The payload of each of its tasks. */
  payload: unknown;
}

/** Missed ticks counted at most (a per-second schedule down for days). */
export const DUE_MAX = 100_000;

/**
 * Reads a handler's `config.schedule`; throws a one-line error naming `name` when it is wrong.
 *
 * @example
 * ```ts
 * readSchedule("0 9 * * *", "config.schedule"); // { cron: "0 9 * * *", timezone: undefined, payload: {} }
 * readSchedule({ cron: "0 9 * * 1", timezone: "Europe/Paris", payload: { report: "weekly" } }, "s");
 * ```
 */
export function readSchedule(value: ScheduleConfig, name: string): Schedule {
  const spec = typeof value === "string" ? { cron: value } : value;
  if (typeof spec !== "object" || spec === null || typeof spec.cron !== "string") {
    throw new Error(`${name} must be a cron expression, or { cron, timezone?, payload? }`);
  }
  const { cron, timezone, payload, ...rest } = spec;
  if (Object.keys(rest).length > 0) {
    throw new Error(`${name} has unknown fields: ${Object.keys(rest).join(", ")}`);
  }
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    throw new Error(
      `${name}: "${cron}" has ${fields} fields; a cron expression has five (minute hour ` +
        "day-of-month month day-of-week) or six (a second first)",
    );
  }
  if (timezone !== undefined && typeof timezone !== "string") {
    throw new Error(`${name}.timezone must be an IANA time zone such as "Europe/Paris"`);
  }
  const schedule = { cron: cron.trim(), timezone, payload: payload ?? {} };
  try {
    nextTick(schedule, Date.now());
  } catch (error) {
    const why = (error as Error).message.replace(/\. Original error: .*/s, "");
    throw new Error(`${name}: "${cron}"${timezone ? ` in ${timezone}` : ""}: ${why}`);
  }
  return schedule;
}

/**
 * The schedule's first tick after `afterMs` (ms since the epoch); undefined when there is none.
 *
 * @example
 * ```ts
 * const schedule = { cron: "* * * * * *", timezone: undefined, payload: {} };
 * nextTick(schedule, 1_500); // 2000
 * ```
 */
export function nextTick(schedule: Schedule, afterMs: number): number | undefined {
  const cron = new Cron(schedule.cron, { timezone: schedule.timezone, paused: true });
  return cron.nextRun(new Date(afterMs))?.getTime();
}

/** The ticks that are due, and how they run: see {@linkcode dueTicks}. */
export type Due =
  | { kind: "none" }
  /** Each of these runs: they fell due lately. */
  | { kind: "each"; ticks: number[] }
  /** Everything was down: one run for `tick`, the latest, standing for `missed` more before it. */
  | { kind: "coalesced"; tick: number; missed: number };

/**
 * The ticks after `cursor` (the last one that made a task) up to `now`, and whether each runs or
 * they collapse into one (see the module's doc on misfires).
 *
 * @example
 * ```ts
 * const everySecond = { cron: "* * * * * *", timezone: undefined, payload: {} };
 * dueTicks(everySecond, 10_000, 12_500, 60_000); // { kind: "each", ticks: [11000, 12000] }
 * dueTicks(everySecond, 10_000, 100_000, 5_000); // { kind: "coalesced", tick: 100000, missed: 89 }
 * ```
 */
export function dueTicks(schedule: Schedule, cursor: number, now: number, misfireMs: number): Due {
  const cron = new Cron(schedule.cron, { timezone: schedule.timezone, paused: true });
  const first = cron.nextRun(new Date(cursor))?.getTime();
  if (first === undefined || first > now) return { kind: "none" };
  if (first >= now - misfireMs) return { kind: "each", ticks: ticksIn(cron, cursor, now) };
  // The latest due tick: among the recent ones, or (a sparse schedule) among them all.
  const tick = ticksIn(cron, now - misfireMs, now).at(-1) ?? ticksIn(cron, cursor, now).at(-1)!;
  return { kind: "coalesced", tick, missed: ticksIn(cron, cursor, tick - 1).length };
}

/** The ticks after `after` up to `until`, at most {@linkcode DUE_MAX} of them. */
function ticksIn(cron: Cron, after: number, until: number): number[] {
  const ticks: number[] = [];
  let from = new Date(after);
  while (ticks.length < DUE_MAX) {
    const next = cron.nextRun(from);
    if (!next || next.getTime() > until) break;
    ticks.push(next.getTime());
    from = next;
  }
  return ticks;
}
