/**
 * Pages of a list route: `?limit=` (1 to 1000, default 50) and `?cursor=` (where the page
 * before ended), and the answer's `next_cursor` with a `Link: <…>; rel="next"` header (RFC 8288).
 *
 * @module
 */

import type { Context } from "hono";
import { type Cursor, decodeCursor, encodeCursor } from "../store/store.ts";

/** The most items one page holds. */
export const PAGE_MAX = 1000;

/** What a request asks of a page. */
export interface PageQuery {
  limit: number;
  after: Cursor | undefined;
}

/**
 * Reads `?limit=` and `?cursor=`; returns what is wrong as a string.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * new Hono().get("/things", (c) => {
 *   const page = readPage(c);
 *   if (typeof page === "string") return c.text(page, 400);
 *   return c.json({ things: [], ...pageOf(c, undefined) });
 * });
 * ```
 */
export function readPage(c: Context): PageQuery | string {
  const limitText = c.req.query("limit") ?? "50";
  const limit = Number(limitText);
  if (!/^\d+$/.test(limitText) || limit < 1 || limit > PAGE_MAX) {
    return `limit must be a whole number from 1 to ${PAGE_MAX} (got "${limitText}")`;
  }
  const cursorText = c.req.query("cursor");
  if (cursorText === undefined || cursorText === "") return { limit, after: undefined };
  const after = decodeCursor(cursorText);
  if (after === undefined) {
    return `cursor must be a next_cursor of an earlier page (got "${cursorText}")`;
  }
  return { limit, after };
}

/**
 * The paging members of a list's answer (`next_cursor`), and its `Link` header when there is a
 * next page.
 */
export function pageOf(c: Context, next: Cursor | undefined): { next_cursor: string | null } {
  if (next === undefined) return { next_cursor: null };
  const cursor = encodeCursor(next);
  const url = new URL(c.req.url);
  url.searchParams.set("cursor", cursor);
  c.header("link", `<${url.pathname}${url.search}>; rel="next"`);
  return { next_cursor: cursor };
}
