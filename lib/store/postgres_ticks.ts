/**
 * Schedules' ticks in PostgreSQL (see `ticks.ts`): a claim is an insert that does nothing when
 * the tick's row is there, so of all api nodes exactly one claims each tick.
 *
 * @module
 */

import type { Sql } from "postgres";
import { type ScheduleTicks, tickOf, type TickRow } from "./ticks.ts";

/**
 * The ticks of the database behind `sql`; `away` turns connection failures into the store's
 * error.
 *
 * @example
 * ```ts
 * declare const sql: import("postgres").Sql;
 * const ticks = postgresTicks(sql, (error) => { throw error; });
 * ```
 */
export function postgresTicks(sql: Sql, away: (error: unknown) => never): ScheduleTicks {
  return {
    async claimTick({ handler, tick, taskId, missed }, now, leaseMs) {
      const claimed = await sql`
          INSERT INTO schedule_ticks (handler, tick, task_id, missed, sent, lease_until)
          VALUES (${handler}, ${tick}, ${taskId}, ${missed}, false, ${now + leaseMs})
          ON CONFLICT (handler, tick) DO NOTHING`.catch(away);
      return claimed.count > 0;
    },
    async tickSent(handler, tick) {
      await sql`UPDATE schedule_ticks SET sent = true
                WHERE handler = ${handler} AND tick = ${tick}`.catch(away);
    },
    async lastTicks() {
      const rows = await sql<TickRow[]>`
          SELECT DISTINCT ON (handler) handler, tick, task_id, missed, sent
          FROM schedule_ticks ORDER BY handler, tick DESC`.catch(away);
      return rows.map(tickOf);
    },
    async staleTicks(now, leaseMs) {
      const rows = await sql<TickRow[]>`
          UPDATE schedule_ticks SET lease_until = ${now + leaseMs}
          WHERE NOT sent AND lease_until < ${now}
          RETURNING handler, tick, task_id, missed, sent`.catch(away);
      return rows.map(tickOf);
    },
    async pruneTicks(before) {
      const deleted = await sql`
          DELETE FROM schedule_ticks t WHERE tick < ${before} AND sent
            AND tick < (SELECT max(tick) FROM schedule_ticks WHERE handler = t.handler)`
        .catch(away);
      return deleted.count;
    },
  };
}
