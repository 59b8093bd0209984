/**
 * Uploaded files in PostgreSQL: chunks of bytes in `file_chunks`, so that every api node can
 * serve every file.
 *
 * @module
 */

import type { Sql } from "postgres";
import type { FileChunks } from "./store.ts";

/**
 * The file chunks of the database behind `sql`; `away` turns connection failures into the
 * store's error.
 *
 * @example
 * ```ts
 * declare const sql: import("postgres").Sql;
 * const files = postgresFiles(sql, (error) => { throw error; });
 * await files.writeChunk("t-1", "image", 0, new Uint8Array([1, 2, 3]));
 * ```
 */
export function postgresFiles(sql: Sql, away: (error: unknown) => never): FileChunks {
  return {
    async writeChunk(taskId, field, seq, data) {
      await sql`INSERT INTO file_chunks (task_id, field, seq, data)
                VALUES (${taskId}, ${field}, ${seq}, ${data})
                ON CONFLICT (task_id, field, seq) DO UPDATE SET data = excluded.data`
        .catch(away);
    },
    async readChunk(taskId, field, seq) {
      const [row] = await sql`SELECT data FROM file_chunks
                              WHERE task_id = ${taskId} AND field = ${field} AND seq = ${seq}`
        .catch(away);
      return row ? new Uint8Array(row.data as Uint8Array) : undefined;
    },
    async deleteFiles(taskId) {
      await sql`DELETE FROM file_chunks WHERE task_id = ${taskId}`.catch(away);
    },
  };
}
