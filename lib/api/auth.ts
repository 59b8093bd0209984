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
  const expected = digest(token);
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1].trim()), expected)) {
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

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}
