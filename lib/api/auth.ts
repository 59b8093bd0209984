/**
 * Bearer-token authentication, for the routes that hold data (see `app.ts` for which are public).
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { problem } from "./problem.ts";

/**
 * Requires `Authorization: Bearer <token>`; compares in constant time (of digests, so the
 * token's length does not leak either).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.use(bearerAuth("a-token-of-16-chars-or-more"));
 * ```
 */
export function bearerAuth(token: string): MiddlewareHandler {
  const matches = tokenCheck(token);
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !matches(match[1].trim())) {
      return problem(
        {
          slug: "unauthorized",
          title: "Unauthorized",
          status: 401,
          detail: "send the API token as 'Authorization: Bearer <WARREN_API_TOKEN>'",
        },
        { "www-authenticate": 'Bearer realm="warren"' },
      );
    }
    return await next();
  };
}

/**
 * A check of a presented token against `token`, in constant time (of digests, so the token's
 * length does not leak either).
 *
 * @example
 * ```ts
 * const matches = tokenCheck("a-token-of-16-chars-or-more");
 * matches("a guess"); // false
 * ```
 */
export function tokenCheck(token: string): (given: string) => boolean {
  const expected = digest(token);
  return (given) => timingSafeEqual(digest(given), expected);
}

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}
