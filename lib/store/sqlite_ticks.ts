/**
 * Schedules' ticks in the SQLite file (see `ticks.ts`). This process is the file's only writer,
 * so an insert that does nothing on a conflict decides a claim.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { type ScheduleTicks, tickOf, type TickRow } from "./ticks.ts";

/** The table, created when missing. */
export const TICKS_SCHEMA = `
CREATE TABLE IF NOT EXISTS schedule_ticks (
  handler TEXT NOT NULL,
  tick INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  missed INTEGER NOT NULL,
  sent INTEGER NOT NULL,
  lease_until INTEGER NOT NULL,
  PRIMARY KEY (handler, tick)
) WITHOUT ROWID;
`;

/**
 * The ticks of the SQLite file `db` (whose schema has {@linkcode TICKS_SCHEMA}).
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * const db = new DatabaseSync(":memory:");
 * db.exec(TICKS_SCHEMA);
 * const ticks = sqliteTicks(db);
 * ```
 */
export function sqliteTicks(db: DatabaseSync): ScheduleTicks {
  const claim = db.prepare(`
    INSERT INTO schedule_ticks (handler, tick, task_id, missed, sent, lease_until)
    VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (handler, tick) DO NOTHING`);
  const sent = db.prepare("UPDATE schedule_ticks SET sent = 1 WHERE handler = ? AND tick = ?");
  const last = db.prepare(`
    SELECT handler, max(tick) AS tick, task_id, missed, sent FROM schedule_ticks GROUP BY handler`);
  const stale = db.prepare(`
    UPDATE schedule_ticks SET lease_until = ? WHERE sent = 0 AND lease_until < ?
    RETURNING handler, tick, task_id, missed, sent`);
  const prune = db.prepare(`
    DELETE FROM schedule_ticks AS t WHERE tick < ? AND sent = 1
      AND tick < (SELECT max(tick) FROM schedule_ticks WHERE handler = t.handler)`);
  return {
    claimTick({ handler, tick, taskId, missed }, now, leaseMs) {
      const { changes } = claim.run(handler, tick, taskId, missed, now + leaseMs);
      return Promise.resolve(Number(changes) > 0);
    },
    tickSent(handler, tick) {
      sent.run(handler, tick);
      return Promise.resolve();
    },
    lastTicks: () => Promise.resolve((last.all() as unknown as TickRow[]).map(tickOf)),
    staleTicks: (now, leaseMs) =>
      Promise.resolve((stale.all(now + leaseMs, now) as unknown as TickRow[]).map(tickOf)),
    pruneTicks: (before) => Promise.resolve(Number(prune.run(before).changes)),
  };
}
