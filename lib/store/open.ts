/**
 * Opens the store `WARREN_STORE` names: a `postgres://` or `postgresql://` URL is PostgreSQL
 * (any number of api processes), anything else is the path of a SQLite file (one api process).
 *
 * @module
 */

import { openPostgresStore } from "./postgres.ts";
import { openSqliteStore } from "./sqlite.ts";
import type { TaskStore } from "./store.ts";

/**
 * Whether `WARREN_STORE` names a PostgreSQL database.
 *
 * @example
 * ```ts
 * isPostgres("postgres://warren@db:5432/warren"); // true
 * isPostgres("./data/warren.db"); // false
 * ```
 */
export function isPostgres(target: string): boolean {
  return /^postgres(ql)?:\/\//i.test(target);
}

/**
 * Opens the store.
 *
 * @example
 * ```ts
 * const store = await openStore("./data/warren.db");
 * await store.close();
 * ```
 */
export function openStore(target: string): Promise<TaskStore> {
  return isPostgres(target) ? openPostgresStore(target) : openSqliteStore(target);
}
