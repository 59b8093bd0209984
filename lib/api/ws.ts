/**
 * `GET /ws`: live task events over a WebSocket, for browsers and services (see `ws_session.ts`
 * for the messages). With `WARREN_API_TOKEN` set, a client authenticates without putting the
 * token in the URL, as browsers cannot set headers on a WebSocket: either its first message is
 * `{"type":"auth","token":"<token>"}`, or it offers the subprotocols `warren` and
 * `warren.bearer.<token>` (`new WebSocket(url, ["warren", "warren.bearer." + token])`). A client
 * that does neither within 10 s, or sends a wrong token, is closed with code 4401. The server says
 * `{"type":"ready"}` once the client may subscribe.
 *
 * A page of another site must not read tasks through a browser that can reach Warren, so a
 * request whose `Origin` is not this server's own is refused (403).
 *
 * @module
 */

import type { Context, Hono } from "hono";
import { errorMessage, logger } from "../log.ts";
import { StoreUnavailableError } from "../store/store.ts";
import { tokenCheck } from "./auth.ts";
import type { ApiDeps } from "./deps.ts";
import { problem } from "./problem.ts";
import { CLOSE_CODES, serveSubscriptions } from "./ws_session.ts";

/** The subprotocol of Warren's messages. */
export const PROTOCOL = "warren";
/** The subprotocol that carries the token: `warren.bearer.<token>`. */
export const TOKEN_PROTOCOL = "warren.bearer.";
const AUTH_TIMEOUT_MS = 10_000;
/** The longest message a client may send (its requests are small). */
const MAX_MESSAGE_BYTES = 4096;

/**
 * Registers `GET /ws`, which checks its own token (see the module's doc): put it with the public
 * routes.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * declare const deps: import("./deps.ts").ApiDeps;
 * wsRoutes(new Hono(), deps);
 * ```
 */
export function wsRoutes(app: Hono, deps: ApiDeps): void {
  const matches = deps.apiToken === undefined ? undefined : tokenCheck(deps.apiToken);
  app.get("/ws", (c) => {
    const refusal = refuseUpgrade(c);
    if (refusal) return refusal;
    const offered = (c.req.header("sec-websocket-protocol") ?? "").split(",")
      .map((p) => p.trim()).filter(Boolean);
    const token = offered.find((p) => p.startsWith(TOKEN_PROTOCOL))?.slice(TOKEN_PROTOCOL.length);
    const { socket, response } = Deno.upgradeWebSocket(
      c.req.raw,
      // Never the token's: a subprotocol the server picks is sent back in the clear.
      offered.includes(PROTOCOL) ? { protocol: PROTOCOL } : {},
    );
    let verdict: boolean | undefined;
    if (!matches) verdict = true;
    else if (token !== undefined) verdict = matches(token);
    greet(socket, deps, verdict, matches);
    return response;
  });
}

/** Why a request to /ws cannot be upgraded: not a WebSocket handshake, or another site's. */
function refuseUpgrade(c: Context): Response | undefined {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    return problem({
      slug: "upgrade-required",
      title: "Upgrade required",
      status: 426,
      detail: "GET /ws is a WebSocket: connect with a WebSocket client",
    }, { upgrade: "websocket" });
  }
  const origin = c.req.header("origin");
  if (origin !== undefined && !sameHost(origin, c.req.header("host"))) {
    return problem({
      slug: "forbidden-origin",
      title: "Forbidden origin",
      status: 403,
      detail: `a page of ${origin} may not open Warren's WebSocket; connect from the api's own ` +
        "origin, or from a service (which sends no Origin)",
    });
  }
  return undefined;
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Authenticates the client (already, by its subprotocol, or by its first message), then serves
 * its subscriptions.
 */
function greet(
  socket: WebSocket,
  deps: ApiDeps,
  verdict: boolean | undefined,
  matches: ((token: string) => boolean) | undefined,
): void {
  let handle: ((text: string) => Promise<void>) | undefined;
  const unauthorized = () =>
    socket.close(
      CLOSE_CODES.unauthorized,
      'unauthorized: send {"type":"auth","token":"<WARREN_API_TOKEN>"} first',
    );
  const timer = verdict === undefined ? setTimeout(unauthorized, AUTH_TIMEOUT_MS) : undefined;
  const admit = () => {
    clearTimeout(timer);
    handle = serveSubscriptions(socket, deps);
    socket.send(JSON.stringify({ type: "ready" }));
  };
  socket.addEventListener("open", () => verdict === false ? unauthorized() : verdict && admit());
  socket.addEventListener("close", () => clearTimeout(timer));
  socket.addEventListener("message", (event) => {
    const text = typeof event.data === "string" ? event.data : "";
    if (text.length > MAX_MESSAGE_BYTES) {
      return socket.close(CLOSE_CODES.tooBig, `messages are at most ${MAX_MESSAGE_BYTES} bytes`);
    }
    if (handle) return void handle(text).catch((error) => failed(socket, error));
    // The first message of a client that has not authenticated must be its token.
    const token = authToken(text);
    if (token !== undefined && matches?.(token)) admit();
    else unauthorized();
  });
}

/** Tells the client that its request could not be answered now (the store is away). */
function failed(socket: WebSocket, error: unknown): void {
  const away = error instanceof StoreUnavailableError;
  if (!away) logger("api").error("/ws failed: {error}", { error: errorMessage(error) });
  if (socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({
    type: "error",
    status: away ? 503 : 500,
    detail: away ? `${error.message}; try again shortly` : "the server failed; its log says why",
  }));
}

function authToken(text: string): string | undefined {
  try {
    const message = JSON.parse(text);
    return message?.type === "auth" && typeof message.token === "string"
      ? message.token
      : undefined;
  } catch {
    return undefined;
  }
}
