/**
 * Opens the store `WARREN_STORE` names: a `postgres://` or `postgresql://` URL is PostgreSQL
 * (any number of api processes), anything else is the path of a SQLite file (one api process).
 *
 * @module
 */

import { isPostgresUrl, redactUrl } from "../config.ts";
import { errorMessage } from "../log.ts";
import { openPostgresStore } from "./postgres.ts";
import { openSqliteStore } from "./sqlite.ts";
import type { TaskStore } from "./store.ts";

/**
 * Opens the store.
 *
 * @example
 * ```ts
 * const store = await openStore("./data/warren.db");
 * await store.close();
 * ```
 */
export async function openStore(target: string): Promise<TaskStore> {
  if (!isPostgresUrl(target)) return await openSqliteStore(target);
  try {
    return await openPostgresStore(target);
  } catch (error) {
    throw new Error(
      `WARREN_STORE: cannot open the PostgreSQL store at ${redactUrl(target)}: ` +
        errorMessage(error),
    );
  }
}
