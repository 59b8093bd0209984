/**
 * The recorder: consumes lifecycle events into the task store in batches (one transaction per
 * batch, through the store writer, which also tells the live feed), and only then acks, so no
 * event is lost if the process dies.
 *
 * @module
 */

import type { Channel, ConsumeMessage } from "amqplib";
import type { Topology } from "../amqp/topology.ts";
import { decodeEvents, type TaskEvent } from "../events.ts";
import { errorMessage, type Logger } from "../log.ts";
import type { StoreWriter } from "../store/writer.ts";

/** Options of {@linkcode createRecorder}. */
export interface RecorderOptions {
  writer: StoreWriter;
  names: Topology;
  log: Logger;
  /** Events per transaction at most. Default 500. */
  batchSize?: number;
  /** How long a partial batch waits for more events, in ms. Default 5. */
  lingerMs?: number;
}

/** See {@linkcode createRecorder}. */
export interface Recorder {
  /** Starts consuming the events queue on a channel (call again after each reconnect). */
  consume(ch: Channel): Promise<void>;
  /** Records whatever is buffered now. */
  flush(): Promise<void>;
}

interface Pending {
  ch: Channel;
  delivery: ConsumeMessage;
  events: TaskEvent[];
}

/**
 * Creates a recorder.
 *
 * @example
 * ```ts
 * const recorder = createRecorder({ writer, names, log });
 * await recorder.consume(channel);
 * ```
 */
export function createRecorder(options: RecorderOptions): Recorder {
  const batchSize = options.batchSize ?? 500;
  const lingerMs = options.lingerMs ?? 5;
  let pending: Pending[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let chain = Promise.resolve();

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return chain;
    const batch = pending;
    pending = [];
    chain = chain.then(() => record(batch));
    return chain;
  };

  const record = async (batch: Pending[]) => {
    const events = batch.flatMap((item) => item.events);
    try {
      await options.writer.write(events);
    } catch (error) {
      options.log.error("cannot record {count} events ({error}); they will be delivered again", {
        count: events.length,
        error: errorMessage(error),
      });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      settleLast(batch, (ch, last) => ch.nack(last, true, true));
      return;
    }
    settleLast(batch, (ch, last) => ch.ack(last, true));
  };

  return {
    async consume(ch) {
      await ch.prefetch(batchSize * 2);
      await ch.consume(options.names.eventsQueue, (delivery) => {
        if (!delivery) {
          // Consumer cancelled by the broker (queue deleted): rebuild the connection, which
          // declares the queue again and consumes it.
          ch.close().catch(() => {});
          return;
        }
        const events = decodeEvents(delivery.content);
        if (!events) options.log.warn("dropped a malformed lifecycle event message");
        pending.push({ ch, delivery, events: events ?? [] });
        if (pending.length >= batchSize) flush();
        else timer ??= setTimeout(flush, lingerMs);
      });
    },
    flush,
  };
}

/** Acks (or nacks) up to the last delivery of each channel in a batch, with `multiple`. */
function settleLast(batch: Pending[], action: (ch: Channel, last: ConsumeMessage) => void) {
  const last = new Map<Channel, ConsumeMessage>();
  for (const item of batch) last.set(item.ch, item.delivery);
  for (const [ch, delivery] of last) {
    try {
      action(ch, delivery);
    } catch {
      // That channel died: the broker redelivers its events, and folding them again is harmless.
    }
  }
}
