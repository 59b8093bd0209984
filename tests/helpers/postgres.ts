/**
 * A PostgreSQL database of a test's own on the local server, created for it and dropped after.
 *
 * @module
 */

import postgres from "postgres";

/** The server's maintenance database, where databases are created and dropped. */
export const POSTGRES_ADMIN_URL = Deno.env.get("WARREN_TEST_POSTGRES") ??
  "postgres://postgres@127.0.0.1:5432/postgres";

/** A database of the test's own. */
export interface TestDatabase {
  /** Its URL, as `WARREN_STORE` takes it. */
  url: string;
  /** Drops it, closing whatever is still connected. */
  drop(): Promise<void>;
}

/**
 * Creates an empty database with a unique name.
 *
 * @example
 * ```ts
 * const db = await createDatabase();
 * // … WARREN_STORE: db.url …
 * await db.drop();
 * ```
 */
export async function createDatabase(): Promise<TestDatabase> {
  const name = `warren_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
