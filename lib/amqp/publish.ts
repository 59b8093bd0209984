/**
 * Confirmed publishing: a publish resolves only when the broker has taken responsibility for the
 * message (publisher confirms), and fails after a deadline instead of waiting forever. The channel's
 * write buffer is bounded: past amqplib's high-water mark a publish waits for `drain` (within the
 * same deadline) rather than queueing without end.
 *
 * @module
 */

import type { ConfirmChannel, Options } from "amqplib";
import { Buffer } from "node:buffer";

/** Why a publish did not get the broker's confirm. */
export class PublishError extends Error {
  override name = "PublishError";
  /**
   * @param permanent Whether trying again cannot help: the message itself cannot be encoded
   * (a header table over amqplib's 64 KB buffer, a value of no AMQP type), as opposed to a
   * broker or network that may answer later.
   */
  constructor(message: string, readonly permanent = false) {
    super(message);
  }
}

const congested = new WeakMap<ConfirmChannel, Promise<void>>();

/**
 * Publishes a persistent message and waits for the broker's confirm.
 *
 * @example
 * ```ts
 * await publishConfirmed(ch, "warren.tasks", "countdown", body, { messageId: id }, 5_000);
 * ```
 */
export function publishConfirmed(
  ch: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Uint8Array,
  options: Options.Publish,
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(
      () => finish(new PublishError(`the broker did not confirm within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const send = () => {
      if (settled) return; // the deadline passed while waiting for drain: do not send late
      try {
        const content = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        const ok = ch.publish(exchange, routingKey, content, { persistent: true, ...options }, (
          error: unknown,
        ) =>
          finish(
            error ? new PublishError(`the broker did not take the message (${error})`) : undefined,
          ));
        if (!ok && !congested.has(ch)) {
          congested.set(
            ch,
            new Promise<void>((drained) =>
              ch.once("drain", () => {
                congested.delete(ch);
                drained();
              })
            ),
          );
        }
      } catch (error) {
        // amqplib throws RangeError or TypeError for a message it cannot encode, and
        // IllegalOperationError for a channel that closed meanwhile.
        const permanent = error instanceof RangeError || error instanceof TypeError;
        finish(new PublishError(`cannot publish: ${(error as Error).message}`, permanent));
      }
    };
    const wait = congested.get(ch);
    if (wait) wait.then(send);
    else send();
  });
}
