/**
 * Acks of one consumer channel, gathered per turn of the event loop: a run of finished deliveries
 * at the head of the channel's unacked list goes out as one `ack` with `multiple`, which halves
 * the broker's cost of a delivery. Finished deliveries behind an unfinished one are acked one by
 * one in the same turn, so nothing is held back by a slow task.
 *
 * @module
 */

import type { Channel, Message } from "amqplib";
import { settle } from "../amqp/settle.ts";
import { createFlusher } from "../flusher.ts";

/** See {@linkcode createAcks}. */
export interface Acks {
  /** Notes a delivery as it arrives (the broker numbers them in order). */
  track(delivery: Message): void;
  /** Acks a delivery with the next flush. */
  ack(delivery: Message): void;
  /** Sends the acks that are waiting (before the channel closes). */
  flush(): void;
}

/**
 * Creates the acks of one channel (a channel that died meanwhile is left alone: see
 * {@linkcode settle}).
 *
 * @example
 * ```ts
 * declare const channel: import("amqplib").Channel;
 * const acks = createAcks(channel);
 * await channel.consume("warren.task.hello", (delivery) => {
 *   if (!delivery) return;
 *   acks.track(delivery);
 *   // … once its outcome is recorded:
 *   acks.ack(delivery);
 * });
 * ```
 */
export function createAcks(ch: Channel): Acks {
  const unacked = new Map<number, Message>();
  const finished = new Set<number>();

  const flush = () => {
    let head: Message | undefined;
    for (const [tag, delivery] of unacked) {
      if (!finished.has(tag)) break;
      head = delivery;
      unacked.delete(tag);
      finished.delete(tag);
    }
    if (head) settle(() => ch.ack(head, true));
    for (const tag of finished) {
      const delivery = unacked.get(tag)!;
      unacked.delete(tag);
      settle(() => ch.ack(delivery));
    }
    finished.clear();
  };
  const schedule = createFlusher(flush, 0);

  return {
    track(delivery) {
      unacked.set(delivery.fields.deliveryTag, delivery);
    },
    ack(delivery) {
      finished.add(delivery.fields.deliveryTag);
      schedule();
    },
    flush,
  };
}
