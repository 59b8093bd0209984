/**
 * A broker link: one AMQP connection that reconnects by itself (amqplib's recovery, exponential
 * backoff with full jitter) and rebuilds its channels, topology and consumers on every connect
 * through a `setup` function. With several broker nodes (a cluster), it uses one at a time and
 * moves to the next when that one is lost or cannot be reached. Code asks the link for its current session and gets `undefined`
 * while the broker is away, so nothing is ever sent on a channel of a dead connection.
 *
 * @module
 */

import { type Channel, type ChannelModel, connect } from "amqplib";
import { backoffMs } from "../backoff.ts";
import { errorMessage, type Logger } from "../log.ts";
import { nodeRotation } from "./nodes.ts";

/** Options of {@linkcode openLink}. */
export interface LinkOptions<S> {
  /** The broker's nodes: one URL, or several nodes of one cluster (tried in turn). */
  urls: readonly string[];
  /** The index in `urls` of the node to try first; by default a random one. */
  firstNode?: number;
  /** Shown in the broker's management UI as the connection name. */
  name: string;
  log: Logger;
  /**
   * Opens channels, declares topology and starts consumers on a fresh connection; returns what
   * the rest of the process uses until the connection drops.
   */
  setup(model: ChannelModel): Promise<S>;
  /** Called after a session is up (also after every reconnect). */
  onUp?(session: S): void;
  /** Called when the session's connection is lost. */
  onDown?(error: Error): void;
  /** Reconnect backoff bounds in ms. Default 200 ms to 10 s. */
  backoff?: { min: number; max: number };
}

/** A self-healing connection; see the module doc. */
export interface BrokerLink<S> {
  /** The live session, or undefined while disconnected. */
  session(): S | undefined;
  /** Whether the broker has blocked publishing on this connection (memory or disk alarm). */
  blocked(): boolean;
  /** Closes the connection and stops reconnecting. */
  close(): Promise<void>;
}

/**
 * Opens a link; it connects in the background and keeps reconnecting until closed.
 *
 * @example
 * ```ts
 * import { Buffer } from "node:buffer";
 * import { logger } from "../log.ts";
 * const link = openLink({
 *   urls: ["amqp://guest:guest@localhost:5672"],
 *   name: "warren api",
 *   log: logger("amqp"),
 *   setup: async (model) => ({ ch: await model.createConfirmChannel() }),
 * });
 * link.session()?.ch.publish("", "some-queue", Buffer.from("{}"));
 * await link.close();
 * ```
 */
export function openLink<S>(options: LinkOptions<S>): BrokerLink<S> {
  const { min, max } = options.backoff ?? { min: 200, max: 10_000 };
  let current: S | undefined;
  let blocked = false;
  let failures = 0;
  const nodes = nodeRotation(options.urls, options.firstNode);

  const connecting = connect(nodes.target, {
    clientProperties: { connection_name: options.name },
    // Small frames (confirms, acks, events) must not wait for Nagle's algorithm: it adds up to
    // 40 ms per round trip with Linux's delayed ACKs.
    noDelay: true,
    keepAlive: true,
    recovery: {
      waitForConnect: false,
      maxRetries: Infinity,
      calculateDelay: (attempt: number) => backoffMs(attempt, { minMs: min, maxMs: max }),
      setup: async (model: ChannelModel) => {
        coalesceWrites(model);
        // amqplib's recovery stops listening to a connection's "error" once it sees the
        // connection closing, yet the connection can still report one after that (a heartbeat
        // timeout while the close handshake waits): with no listener, Node's emitter would
        // throw it, uncaught, and end the worker. The link reconnects either way.
        model.on(
          "error",
          (error: Error) =>
            options.log.debug("error on a closing connection: {error}", { error: error.message }),
        );
        model.on("blocked", (reason: string) => {
          blocked = true;
          options.log.warn("broker blocked publishing: {reason}", { reason });
        });
        model.on("unblocked", () => blocked = false);
        current = await options.setup(model);
      },
    },
  });

  const ready = connecting.then((recovering) => {
    recovering.on("connect", () => {
      failures = 0;
      blocked = false;
      options.log.info("connected to the broker at {node}", { node: nodes.current() });
      if (current !== undefined) options.onUp?.(current);
    });
    recovering.on("disconnect", (error: Error) => {
      current = undefined;
      options.log.warn("lost the broker connection to {node}: {error}", {
        node: nodes.current(),
        error: error.message,
      });
      nodes.next();
      options.onDown?.(error);
    });
    recovering.on("connect-failed", (error: Error) => {
      current = undefined;
      // The first failure and then every tenth: a broker that is away for long does not flood logs.
      if (failures++ % 10 === 0) {
        options.log.warn("cannot reach the broker at {node} ({error}); retrying", {
          node: nodes.current(),
          error: errorMessage(error),
        });
      }
      nodes.next();
    });
    recovering.on("error", (error: Error) => {
      options.log.debug("connection error: {error}", { error: error.message });
    });
    return recovering;
  });

  return {
    session: () => current,
    blocked: () => blocked,
    close: async () => {
      const recovering = await ready;
      current = undefined;
      await recovering.close().catch(() => {});
    },
  };
}

/**
 * Makes a channel's death the connection's: when the broker closes one channel (a protocol
 * error), the whole connection is closed so the link rebuilds everything cleanly.
 */
export function bindChannel<C extends Channel>(model: ChannelModel, ch: C, log: Logger): C {
  ch.on("error", (error: Error) => log.warn("channel error: {error}", { error: error.message }));
  ch.on("close", () => model.close().catch(() => {}));
  return ch;
}

/** The part of a Node socket that {@linkcode coalesceWrites} uses. */
interface CorkableSocket {
  write(...args: unknown[]): boolean;
  cork(): void;
  uncork(): void;
}

/**
 * Gathers every frame amqplib writes in one run of synchronous code into one socket write (cork
 * at the first write, uncork once the pending microtasks have run). With TCP_NODELAY on, this keeps small frames from
 * costing a system call and a packet each, without Nagle's delays.
 */
function coalesceWrites(model: ChannelModel): void {
  // amqplib keeps the socket as `connection.stream`; it is not part of its typed API.
  const socket = (model.connection as unknown as { stream?: CorkableSocket }).stream;
  if (!socket || typeof socket.cork !== "function") return;
  const write = socket.write.bind(socket);
  let corked = false;
  socket.write = (...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      queueMicrotask(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write(...args);
  };
}
