/**
 * The broker nodes a link may connect to (`AMQP_URL` may list several, comma-separated): one at a
 * time, and the next when the current one is lost or cannot be reached. A link starts at a
 * random node, so the connections of a fleet spread over the cluster.
 *
 * @module
 */

import type { Options } from "amqplib";
import { redactUrl } from "../config.ts";

/** The rotation of a link's nodes; see {@linkcode nodeRotation}. */
export interface NodeRotation {
  /**
   * What amqplib connects to. The same object throughout: amqplib's recovery reads it on each
   * attempt, so moving on changes where the next attempt goes.
   */
  target: Options.Connect;
  /** The current node's URL, its password masked, for logs. */
  current(): string;
  /** Moves to the next node (after the current one was lost or could not be reached). */
  next(): void;
}

/**
 * Starts a rotation over `urls`, at `start` (by default a random node).
 *
 * @example
 * ```ts
 * const nodes = nodeRotation(["amqp://guest:guest@rabbit-1:5672", "amqp://guest:guest@rabbit-2:5672"], 0);
 * nodes.target.hostname; // "rabbit-1"
 * nodes.next();
 * nodes.target.hostname; // "rabbit-2"
 * ```
 */
export function nodeRotation(
  urls: readonly string[],
  start: number = Math.floor(Math.random() * urls.length),
): NodeRotation {
  if (urls.length === 0) throw new Error("a link needs at least one broker URL");
  let index = start % urls.length;
  const target: Options.Connect = connectOptions(urls[index]);
  return {
    target,
    current: () => redactUrl(urls[index]),
    next() {
      index = (index + 1) % urls.length;
      Object.assign(target, connectOptions(urls[index]));
    },
  };
}

/**
 * One URL as amqplib's connect options: the fields its URL parser would read, decoded alike
 * (the user and password are percent-decoded; the vhost is unescaped by amqplib).
 */
function connectOptions(url: string): Options.Connect {
  const parsed = new URL(url);
  const number = (name: string) => {
    const value = parsed.searchParams.get(name);
    return value === null ? undefined : Number(value);
  };
  return {
    protocol: parsed.protocol.replace(/:$/, ""),
    hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: parsed.port ? Number(parsed.port) : undefined,
    username: decodeURIComponent(parsed.username || "guest"),
    password: decodeURIComponent(parsed.password || (parsed.username ? "" : "guest")),
    vhost: parsed.pathname.length > 1 ? parsed.pathname.slice(1) : "/",
    heartbeat: number("heartbeat"),
    frameMax: number("frameMax"),
    channelMax: number("channelMax"),
    locale: parsed.searchParams.get("locale") ?? undefined,
  };
}
