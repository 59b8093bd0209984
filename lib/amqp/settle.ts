/**
 * Acking and nacking on a channel that may have died meanwhile.
 *
 * @module
 */

/**
 * Runs an ack or nack, and leaves it be if the channel is closed: a delivery tag means nothing
 * on any other channel (sending it there would close that one too), and the broker redelivers
 * whatever it got no ack for.
 *
 * @example
 * ```ts
 * declare const channel: import("amqplib").Channel;
 * declare const delivery: import("amqplib").Message;
 * settle(() => channel.ack(delivery));
 * ```
 */
export function settle(action: () => void): void {
  try {
    action();
  } catch {
    // The channel is closed: see above.
  }
}
