/**
 * Schedules' ticks in the store: the row of a tick is the claim on it, so a tick makes one task
 * however many api processes work it out (its primary key is the handler and the tick), and it is
 * the outbox of that task's publish: a claim not marked sent within its lease is taken over by
 * another process, which publishes the task again under the same id (see `api/scheduler.ts`).
 *
 * @module
 */

/** One tick of a schedule, claimed. */
export interface Tick {
  handler: string;
  /** When it fell due, ms since the epoch. */
  tick: number;
  /** The task it makes (see `scheduleTaskId`). */
  taskId: string;
  /** Earlier ticks it stands for, missed while everything was down. */
  missed: number;
  /** Whether its task is in the broker. */
  sent: boolean;
}

/** What the stores do with ticks. */
export interface ScheduleTicks {
  /**
   * Claims a tick; resolves true when this call claimed it (it then publishes the task and calls
   * {@linkcode ScheduleTicks.tickSent}), false when it was claimed before, by any process.
   */
  claimTick(tick: Omit<Tick, "sent">, now: number, leaseMs: number): Promise<boolean>;
  /** Marks a tick's task as in the broker. */
  tickSent(handler: string, tick: number): Promise<void>;
  /** Each scheduled handler's latest claimed tick. */
  lastTicks(): Promise<Tick[]>;
  /**
   * Takes over the ticks whose claim ran out unsent (their claimer died or could not publish);
   * resolves with those this call now holds, for `leaseMs`.
   */
  staleTicks(now: number, leaseMs: number): Promise<Tick[]>;
  /** Deletes ticks older than `before`, but each handler's latest; resolves with how many. */
  pruneTicks(before: number): Promise<number>;
}

/** A tick's row, as both stores keep it. */
export interface TickRow {
  handler: string;
  tick: number | string;
  task_id: string;
  missed: number;
  sent: boolean | number;
}

/**
 * A row as a {@linkcode Tick}.
 *
 * @example
 * ```ts
 * tickOf({ handler: "report", tick: "60000", task_id: "t-1", missed: 0, sent: 1 }).tick; // 60000
 * ```
 */
export function tickOf(row: TickRow): Tick {
  return {
    handler: row.handler,
    tick: Number(row.tick),
    taskId: row.task_id,
    missed: row.missed,
    sent: Boolean(row.sent),
  };
}
