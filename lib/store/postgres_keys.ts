/**
 * Idempotency keys in PostgreSQL: a claim inserts its row, or takes over one that expired, in one
 * statement, so two api nodes never both hold a key (see `keys.ts`).
 *
 * @module
 */

import type { Sql } from "postgres";
import { type IdempotencyKeys, type KeyRow, verdictOn } from "./keys.ts";

/**
 * The idempotency keys of the database behind `sql`; `away` turns connection failures into the
 * store's error.
 *
 * @example
 * ```ts
 * declare const sql: import("postgres").Sql;
 * const keys = postgresKeys(sql, (error) => { throw error; });
 * ```
 */
export function postgresKeys(sql: Sql, away: (error: unknown) => never): IdempotencyKeys {
  const claimKey: IdempotencyKeys["claimKey"] = async (claim) => {
    const { scope, key, fingerprint, taskId, now } = claim;
    const claimed = await sql`
        INSERT INTO idempotency_keys
          (scope, key, fingerprint, task_id, state, lease_until, expires_at)
        VALUES (${scope}, ${key}, ${fingerprint}, ${taskId}, 'pending',
                ${now + claim.leaseMs}, ${now + claim.ttlMs})
        ON CONFLICT (scope, key) DO UPDATE SET
          fingerprint = excluded.fingerprint, task_id = excluded.task_id, state = 'pending',
          answer = NULL, lease_until = excluded.lease_until, expires_at = excluded.expires_at
        WHERE idempotency_keys.expires_at <= ${now}
        RETURNING task_id`.catch(away);
    if (claimed.length > 0) return { kind: "claimed" };
    const [row] = await sql<KeyRow[]>`
        SELECT fingerprint, task_id, state, answer, lease_until, expires_at
        FROM idempotency_keys WHERE scope = ${scope} AND key = ${key}`.catch(away);
    if (!row) return await claimKey(claim); // it expired and went meanwhile
    return verdictOn(
      row,
      claim,
      async () =>
        (await sql`UPDATE idempotency_keys SET lease_until = ${now + claim.leaseMs}
                   WHERE scope = ${scope} AND key = ${key} AND state = 'pending'
                     AND lease_until = ${row.lease_until}`.catch(away)).count > 0,
    );
  };
  return {
    claimKey,
    async completeKey(scope, key, answer) {
      await sql`UPDATE idempotency_keys SET state = 'done', answer = ${answer}
                WHERE scope = ${scope} AND key = ${key}`.catch(away);
    },
    async releaseKey(scope, key, taskId) {
      await sql`DELETE FROM idempotency_keys
                WHERE scope = ${scope} AND key = ${key} AND task_id = ${taskId}
                  AND state = 'pending'`.catch(away);
    },
  };
}
