/**
 * The scheduler: every api process works out its handlers' due ticks (see `schedule.ts`) and
 * claims each in the store, which lets exactly one process have it (see `store/ticks.ts`); the
 * claimer publishes the tick's task (its id derived from the handler and the tick), records it
 * queued and marks the tick sent. A claim left unsent (its process died, or the broker was away)
 * is taken over after its lease and published again under the same id. No process leads: the
 * store's unique key decides, so a process that stops or falls behind takes nothing with it.
 *
 * @module
 */

import { taskTraceparent } from "../trace.ts";
import type { NewTask } from "../amqp/publish.ts";
import type { TaskEvent } from "../events.ts";
import { queuedEvent } from "./intake.ts";
import type { HandlerInfo } from "../handler.ts";
import { scheduleTaskId } from "../id.ts";
import { errorMessage, logger } from "../log.ts";
import { dueTicks, nextTick, type Schedule } from "../schedule.ts";
import type { ScheduleTicks, Tick } from "../store/ticks.ts";

/** What {@linkcode startScheduler} needs. */
export interface SchedulerDeps {
  handlers: Pick<HandlerInfo, "name" | "config">[];
  ticks: ScheduleTicks;
  /** Whether a task can be published now: no tick is claimed while it cannot. */
  ready(): boolean;
  /**
   * Publishes a task; resolves once the broker confirmed it. `again` marks a tick taken over
   * from a claim left unsent, whose task may be in the broker already.
   */
  enqueue(task: NewTask, again: boolean): Promise<void>;
  /** Records tasks queued. */
  record(events: TaskEvent[]): Promise<void>;
  /** How late a tick may be and still run on its own (`WARREN_SCHEDULE_MISFIRE`). */
  misfireMs: number;
}

/** A running scheduler. */
export interface Scheduler {
  /** Works out and claims what is due now (the timer calls it; a test may too). */
  round(): Promise<void>;
  stop(): Promise<void>;
}

/** How long a claim holds a tick before another process may publish it. */
export const TICK_LEASE_MS = 15_000;
/** The longest sleep between rounds (they also take over stale claims). */
const ROUND_MAX_MS = 1_000;

/**
 * Starts scheduling the handlers that have a schedule; does nothing when none has.
 *
 * @example
 * ```ts
 * declare const deps: SchedulerDeps;
 * const scheduler = startScheduler(deps);
 * await scheduler.stop();
 * ```
 */
export function startScheduler(deps: SchedulerDeps): Scheduler {
  const log = logger("scheduler");
  const scheduled = deps.handlers.flatMap((h) =>
    h.config.schedule ? [{ name: h.name, schedule: h.config.schedule }] : []
  );
  const since = Date.now();
  let stopping = false;
  let running: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const round = () => scheduleRound(deps, scheduled, since);

  const loop = () => {
    if (stopping) return;
    running = round().catch((error) =>
      log.warn("cannot schedule now ({error}); trying again shortly", {
        error: errorMessage(error),
      })
    ).finally(() => {
      running = undefined;
      if (!stopping) timer = setTimeout(loop, untilNext(scheduled.map((s) => s.schedule)));
    });
  };
  if (scheduled.length > 0) loop();

  return {
    round,
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** A handler's schedule. */
interface Scheduled {
  name: string;
  schedule: Schedule;
}

/**
 * One round: takes over the claims left unsent past their lease, then claims and publishes each
 * schedule's due ticks (counted from its last claimed tick, or from `since` for a new one).
 */
async function scheduleRound(deps: SchedulerDeps, scheduled: Scheduled[], since: number) {
  if (!deps.ready()) return; // the due ticks wait, and are claimed once it can
  const now = Date.now();
  const schedules = new Map(scheduled.map((s) => [s.name, s.schedule]));
  for (const stale of await deps.ticks.staleTicks(now, TICK_LEASE_MS)) {
    const schedule = schedules.get(stale.handler);
    if (schedule) await publishTick(deps, stale, schedule, true);
  }
  const last = new Map((await deps.ticks.lastTicks()).map((t) => [t.handler, t.tick]));
  for (const { name, schedule } of scheduled) {
    const due = dueTicks(schedule, last.get(name) ?? since, now, deps.misfireMs);
    for (const [tick, missed] of ticksOf(due)) {
      const claim = { handler: name, tick, taskId: scheduleTaskId(name, tick), missed };
      if (await deps.ticks.claimTick(claim, now, TICK_LEASE_MS)) {
        await publishTick(deps, claim, schedule, false);
      }
    }
  }
}

/** Publishes a claimed tick's task, records it queued, and marks the tick sent. */
async function publishTick(
  deps: SchedulerDeps,
  tick: Omit<Tick, "sent">,
  schedule: Schedule,
  again: boolean,
) {
  const task: NewTask = {
    id: tick.taskId,
    handler: tick.handler,
    payload: schedule.payload,
    createdAt: Date.now(),
    traceparent: taskTraceparent(undefined), // a trace of its own per tick
  };
  await deps.enqueue(task, again);
  await deps.record([queuedEvent(task)]);
  await deps.ticks.tickSent(tick.handler, tick.tick);
  if (tick.missed > 0) {
    logger("scheduler").warn(
      "{handler}: one task for the tick of {tick} and the {missed} missed before it",
      { handler: tick.handler, tick: new Date(tick.tick).toISOString(), missed: tick.missed },
    );
  }
}

/** The ticks a round claims, each with the missed ticks it stands for. */
function ticksOf(due: ReturnType<typeof dueTicks>): [number, number][] {
  if (due.kind === "none") return [];
  if (due.kind === "each") return due.ticks.map((tick) => [tick, 0]);
  return [[due.tick, due.missed]];
}

/** How long to sleep until the next tick of any schedule (just past it), at most a second. */
function untilNext(schedules: Schedule[]): number {
  const now = Date.now();
  const next = Math.min(...schedules.map((s) => nextTick(s, now) ?? Infinity));
  return Math.max(0, Math.min(next - now + 5, ROUND_MAX_MS));
}
