/**
 * Bearer-token authentication for every route but the health checks.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { problem } from "./problem.ts";

/** Routes that answer without a token, so probes need no secret. */
export const PUBLIC_PATHS = new Set(["/healthz", "/readyz"]);

/**
 * Requires `Authorization: Bearer <token>`; compares in constant time (of digests, so the
 * token's length does not leak either).
 */
export function bearerAuth(token: string): MiddlewareHandler {
  const expected = digest(token);
  return async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path)) return await next();
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
    await next();
  };
}

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}
