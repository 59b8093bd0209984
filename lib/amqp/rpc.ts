/**
 * Request and reply over the broker, by RabbitMQ's direct reply-to: a channel of the caller's
 * own sends requests to a queue, whichever consumer takes one answers on the caller's
 * pseudo-queue, and each answer is matched to its request by correlation id. An answer is its
 * body, or the header `x-warren-error` saying why there is none. What a worker asks of the api (a
 * file's chunks, an idempotency key) goes this way, so workers need nothing but their AMQP
 * connection.
 *
 * @module
 */

import type { Channel, ConsumeMessage } from "amqplib";
import { Buffer } from "node:buffer";
import { settle } from "./settle.ts";

/** The broker's pseudo-queue for answers to a channel. */
const REPLY_TO = "amq.rabbitmq.reply-to";
/** The header of an answer that says why there is no body. */
const ERROR_HEADER = "x-warren-error";

/** A caller; see {@linkcode openCaller}. */
export interface Caller {
  /**
   * Sends a request; resolves with the answer's body, or rejects naming `what` with the reason
   * the answer gives, or after `timeoutMs` without one.
   */
  call(body: Uint8Array, what: string): Promise<Uint8Array>;
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
      return new Promise<Uint8Array>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`${what}: no api node answered within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        waiting.set(id, (message) => {
          clearTimeout(timer);
          waiting.delete(id);
          const error = message.properties.headers?.[ERROR_HEADER];
          if (error) reject(new Error(`${what}: ${error}`));
          else resolve(new Uint8Array(message.content));
        });
        ch.sendToQueue(queue, Buffer.from(body), { replyTo: REPLY_TO, correlationId: id });
      });
    },
    close: () => ch.close().catch(() => {}),
  };
}

/** Thrown by a server's handler: the caller is told `message` instead of a body. */
export class Refusal extends Error {
  override name = "Refusal";
}

/**
 * Answers the requests on `queue` with `handle`, `prefetch` at a time, on `ch`; call it again on
 * each new connection. A handler that throws a {@linkcode Refusal} has the caller told why;
 * any other error is the caller's too, as `failed` words it (the store is away, say).
 *
 * @example
 * ```ts
 * declare const ch: import("amqplib").Channel;
 * await serveCalls(ch, "warren.files", 8, (body) => Promise.resolve(body), () => "try again");
 * ```
 */
export async function serveCalls(
  ch: Channel,
  queue: string,
  prefetch: number,
  handle: (body: Uint8Array) => Promise<Uint8Array>,
  failed: (error: unknown) => string,
): Promise<void> {
  await ch.prefetch(prefetch);
  await ch.consume(queue, (message) => {
    if (!message) return void ch.close().catch(() => {}); // the queue was deleted: reconnect
    const reply = (body: Uint8Array, error?: string) =>
      settle(() => {
        const { replyTo, correlationId } = message.properties;
        if (typeof replyTo === "string") {
          const headers = error === undefined ? {} : { [ERROR_HEADER]: error };
          ch.sendToQueue(replyTo, Buffer.from(body), { correlationId, headers });
        }
        ch.ack(message);
      });
    handle(new Uint8Array(message.content)).then(
      (body) => reply(body),
      (error) => reply(new Uint8Array(), error instanceof Refusal ? error.message : failed(error)),
    );
  });
}
