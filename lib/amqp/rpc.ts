/**
 * Request and reply over the broker, by RabbitMQ's direct reply-to: a channel of the caller's
 * own sends requests to a queue, whichever consumer takes one answers on the caller's
 * pseudo-queue, and each answer is matched to its request by correlation id. What a worker asks
 * of the api (a file's chunks, an idempotency key) goes this way, so workers need nothing but
 * their AMQP connection.
 *
 * @module
 */

import type { Channel, ConsumeMessage, Options } from "amqplib";
import { Buffer } from "node:buffer";

/** The broker's pseudo-queue for answers to a channel. */
const REPLY_TO = "amq.rabbitmq.reply-to";

/** A caller; see {@linkcode openCaller}. */
export interface Caller {
  /** Sends a request; resolves with the answer, or rejects after `timeoutMs` naming `what`. */
  call(body: Uint8Array, what: string): Promise<ConsumeMessage>;
  close(): Promise<void>;
}

/**
 * Makes `ch` a caller of `queue`: it consumes its own answers from now on.
 *
 * @example
 * ```ts
 * declare const ch: import("amqplib").Channel;
 * const caller = await openCaller(ch, "warren.files", 30_000);
 * const answer = await caller.call(new TextEncoder().encode("{}"), "a file chunk");
 * await caller.close();
 * ```
 */
export async function openCaller(ch: Channel, queue: string, timeoutMs: number): Promise<Caller> {
  ch.on("error", () => {}); // its calls fail, and say why
  const waiting = new Map<string, (message: ConsumeMessage) => void>();
  await ch.consume(REPLY_TO, (message) => {
    if (message) waiting.get(String(message.properties.correlationId))?.(message);
  }, { noAck: true });
  let next = 0;
  return {
    call(body, what) {
      const id = String(next++);
      return new Promise<ConsumeMessage>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`${what}: no api node answered within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        waiting.set(id, (message) => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(message);
        });
        ch.sendToQueue(queue, Buffer.from(body), { replyTo: REPLY_TO, correlationId: id });
      });
    },
    close: () => ch.close().catch(() => {}),
  };
}

/**
 * Answers the request `message` on `ch` (the channel that consumed it) with `body`.
 *
 * @example
 * ```ts
 * declare const ch: import("amqplib").Channel;
 * declare const message: import("amqplib").ConsumeMessage;
 * answer(ch, message, new TextEncoder().encode("{}"));
 * ```
 */
export function answer(
  ch: Channel,
  message: ConsumeMessage,
  body: Uint8Array,
  headers: Options.Publish["headers"] = {},
): void {
  const { replyTo, correlationId } = message.properties;
  if (typeof replyTo !== "string") return;
  ch.sendToQueue(replyTo, Buffer.from(body), { correlationId, headers });
}
