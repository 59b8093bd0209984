/**
 * Bearer-token authentication for every route but the health checks.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { problem } from "./problem.ts";

/** Routes that answer without a token, so probes need no secret. */
export const PUBLIC_PATHS = ["/healthz", "/readyz"];

/**
 * Requires `Authorization: Bearer <token>` on every path but `publicPaths` (and what is below a
 * public path ending in `/*`); compares in constant time (of digests, so the token's length does
 * not leak either).
 */
export function bearerAuth(token: string, publicPaths: string[] = PUBLIC_PATHS): MiddlewareHandler {
  const expected = digest(token);
  const exact = new Set(publicPaths.filter((p) => !p.endsWith("/*")));
  const prefixes = publicPaths.filter((p) => p.endsWith("/*")).map((p) => p.slice(0, -1));
  const isPublic = (path: string) => exact.has(path) || prefixes.some((p) => path.startsWith(p));
  return async (c, next) => {
    if (isPublic(c.req.path)) return await next();
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
