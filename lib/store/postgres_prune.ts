/**
 * Deleting tasks from PostgreSQL: one with its files, or the ended ones past a cutoff, a batch
 * at a time (rows another node is deleting are skipped, not waited for); and expired idempotency
 * keys.
 *
 * @module
 */

import type { Sql } from "postgres";
import type { TaskStore } from "./store.ts";

/**
 * The deletions of the database behind `sql`; `away` turns connection failures into the store's
 * error, `forget` drops a deleted task from the process's copies.
 *
 * @example
 * ```ts
 * declare const sql: import("postgres").Sql;
 * const removal = postgresRemoval(sql, (error) => { throw error; }, () => {});
 * await removal.prune({ state: "succeeded", before: Date.now() - 86_400_000, except: [] }, 500);
 * ```
 */
export function postgresRemoval(
  sql: Sql,
  away: (error: unknown) => never,
  forget: (id: string) => void,
): Pick<TaskStore, "delete" | "prune" | "pruneKeys"> {
  return {
    async delete(id) {
      const deleted = await sql.begin(async (tx) => {
        await tx`DELETE FROM file_chunks WHERE task_id = ${id}`;
        return (await tx`DELETE FROM tasks WHERE id = ${id}`).count > 0;
      }).catch(away);
      forget(id);
      return deleted;
    },

    async prune(rule, limit) {
      const only = rule.handler === undefined
        ? sql`NOT (handler = ANY(${rule.except ?? []}))`
        : sql`handler = ${rule.handler}`;
      const rows = await sql`
        WITH doomed AS (
          SELECT id FROM tasks
          WHERE state = ${rule.state} AND finished_at < ${rule.before} AND ${only}
          ORDER BY finished_at LIMIT ${limit} FOR UPDATE SKIP LOCKED
        ), chunks AS (
          DELETE FROM file_chunks WHERE task_id IN (SELECT id FROM doomed)
        )
        DELETE FROM tasks WHERE id IN (SELECT id FROM doomed) RETURNING id`.catch(away);
      for (const row of rows) forget(row.id as string);
      return rows.length;
    },

    async pruneKeys(now, limit) {
      const rows = await sql`
        DELETE FROM idempotency_keys WHERE (scope, key) IN (
          SELECT scope, key FROM idempotency_keys WHERE expires_at <= ${now} LIMIT ${limit}
        ) RETURNING key`.catch(away);
      return rows.length;
    },
  };
}
