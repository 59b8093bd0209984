/**
 * One WebSocket client's subscriptions (to tasks, handlers, or everything) and what it is sent:
 * the same event objects as the Server-Sent Events routes, as JSON messages. A client that
 * leaves more than {@linkcode MAX_UNSENT_BYTES} unread is closed as too slow, so no client can
 * make the server hold its messages without bound.
 *
 * Client to server: `{"type":"subscribe","task":"<id>"}`, `{"type":"subscribe","handler":"<name>"}`
 * or `{"type":"subscribe","all":true}`, and `unsubscribe` alike. Server to client:
 * `{"type":"subscribed",…}` and `{"type":"unsubscribed",…}` (echoing the request),
 * `{"type":"event","event":"<state or progress>","version":n,"task":{…}}` (a task subscription
 * starts with the task as it is), and `{"type":"error","status":400|404,"detail":"…"}`.
 *
 * @module
 */

import type { TaskChange, TaskRecord } from "../store/store.ts";
import type { ApiDeps } from "./deps.ts";
import { taskJson } from "./task_json.ts";

/** Bytes a client may leave unread before it is closed as too slow. */
export const MAX_UNSENT_BYTES = 1 << 20;
/** Tasks one connection may follow at once. */
export const MAX_TASK_SUBSCRIPTIONS = 1_000;

/** Close codes (4000–4999 are the application's own). */
export const CLOSE_CODES = {
  /** No token, or a wrong one. */
  unauthorized: 4401,
  /** More than {@linkcode MAX_UNSENT_BYTES} unread. */
  tooSlow: 4008,
  /** The server is shutting down. */
  goingAway: 1001,
  /** A message too large. */
  tooBig: 1009,
} as const;

/** What a subscribe or unsubscribe names. */
type Target = { task: string } | { handler: string } | { all: true };

/** A client's subscriptions: the tasks (with the version sent last), handlers, or everything. */
interface Subscriptions {
  tasks: Map<string, number>;
  handlers: Set<string>;
  all: boolean;
}

/**
 * Serves one authenticated client on `socket` until it closes: reads its subscribe and
 * unsubscribe messages and sends it the changes they ask for. Returns the function that handles
 * one text message.
 *
 * @example
 * ```ts
 * declare const socket: WebSocket;
 * declare const deps: import("./deps.ts").ApiDeps;
 * const handle = serveSubscriptions(socket, deps);
 * socket.onmessage = (event) => handle(String(event.data));
 * ```
 */
export function serveSubscriptions(
  socket: WebSocket,
  deps: Pick<ApiDeps, "feed" | "store" | "handlers">,
): (text: string) => Promise<void> {
  const subs: Subscriptions = { tasks: new Map(), handlers: new Set(), all: false };
  const send = sender(socket);
  const stopFeed = deps.feed.subscribeAll((changes) => {
    for (const change of changes) if (wanted(subs, change)) sendChange(send, subs, change);
  });
  const stopClose = deps.feed.onClose(() => socket.close(CLOSE_CODES.goingAway, "shutting down"));
  socket.addEventListener("close", () => {
    stopFeed();
    stopClose();
  });
  const known = new Set(deps.handlers.map((h) => h.name));

  return async (text) => {
    const request = parseRequest(text);
    if (typeof request === "string") return send({ type: "error", status: 400, detail: request });
    const { type, target } = request;
    if ("handler" in target && !known.has(target.handler)) {
      return send({ type: "error", status: 404, detail: `no handler "${target.handler}"` });
    }
    if (type === "unsubscribe") {
      if ("task" in target) subs.tasks.delete(target.task);
      else if ("handler" in target) subs.handlers.delete(target.handler);
      else subs.all = false;
      return send({ type: "unsubscribed", ...target });
    }
    if ("task" in target) return await subscribeTask(target.task);
    if ("handler" in target) subs.handlers.add(target.handler);
    else subs.all = true;
    send({ type: "subscribed", ...target });
  };

  /** Follows a task: from now on, then its state as it is (unless a change came meanwhile). */
  async function subscribeTask(id: string) {
    if (!subs.tasks.has(id) && subs.tasks.size >= MAX_TASK_SUBSCRIPTIONS) {
      return send({
        type: "error",
        status: 400,
        detail: `a connection follows at most ${MAX_TASK_SUBSCRIPTIONS} tasks; unsubscribe some`,
      });
    }
    subs.tasks.set(id, subs.tasks.get(id) ?? 0);
    const task = await deps.store.get(id);
    if (!task) {
      subs.tasks.delete(id);
      return send({ type: "error", status: 404, detail: `no task with id "${id}"` });
    }
    send({ type: "subscribed", task: id });
    if ((subs.tasks.get(id) ?? 0) < task.version) sendTask(send, subs, task.state, task);
  }
}

/** Whether a change is one the client asked for and has not seen. */
function wanted(subs: Subscriptions, { type, task }: TaskChange): boolean {
  if (!type) return false; // filled-in facts: no event of their own, as on the SSE routes
  const seen = subs.tasks.get(task.id);
  if (seen !== undefined) return task.version > seen;
  return subs.all || subs.handlers.has(task.handler);
}

function sendChange(send: Send, subs: Subscriptions, change: TaskChange): void {
  sendTask(send, subs, change.type!, change.task);
}

function sendTask(send: Send, subs: Subscriptions, event: string, task: TaskRecord): void {
  if (subs.tasks.has(task.id)) subs.tasks.set(task.id, task.version);
  send({ type: "event", event, version: task.version, task: taskJson(task) });
}

type Send = (message: Record<string, unknown>) => void;

/** Sends JSON messages while the socket is open; closes one whose client reads too slowly. */
function sender(socket: WebSocket): Send {
  return (message) => {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > MAX_UNSENT_BYTES) {
      socket.close(
        CLOSE_CODES.tooSlow,
        `too slow: over ${MAX_UNSENT_BYTES} bytes unread; reconnect and subscribe again`,
      );
      return;
    }
    socket.send(JSON.stringify(message));
  };
}

/** Reads a client's message, or says what is wrong with it. */
function parseRequest(
  text: string,
): { type: "subscribe" | "unsubscribe"; target: Target } | string {
  const usage = 'send {"type":"subscribe"} (or "unsubscribe") with "task": "<id>", ' +
    '"handler": "<name>" or "all": true';
  let message: Record<string, unknown>;
  try {
    message = JSON.parse(text);
  } catch {
    return `not JSON: ${usage}`;
  }
  if (typeof message !== "object" || message === null) return usage;
  const { type, task, handler, all } = message;
  if (type !== "subscribe" && type !== "unsubscribe") return usage;
  if (typeof task === "string" && task) return { type, target: { task } };
  if (typeof handler === "string" && handler) return { type, target: { handler } };
  if (all === true) return { type, target: { all } };
  return usage;
}
