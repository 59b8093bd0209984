/**
 * The recorder: consumes lifecycle events into the task store through the store writer (which
 * commits them in groups and tells the live feed), and acks each event message only after its
 * events were committed (and what must follow a commit was done: see
 * {@linkcode RecorderOptions.afterCommit}), so no event is lost if the process dies.
 *
 * @module
 */

import type { Channel } from "amqplib";
import { settle } from "../amqp/settle.ts";
import type { Topology } from "../amqp/topology.ts";
import { decodeEvents } from "../wire.ts";
import type { TaskEvent } from "../events.ts";
import { errorMessage, type Logger } from "../log.ts";
import type { StoreWriter } from "../store/writer.ts";

/** Options of {@linkcode recordEvents}. */
export interface RecorderOptions {
  writer: StoreWriter;
  names: Topology;
  log: Logger;
  /**
   * Runs once a message's events are committed, before its ack (scheduling callbacks); when it
   * fails, the message is delivered again.
   */
  afterCommit?: (events: TaskEvent[]) => Promise<void>;
}

/** Event messages held unacked at once: a bound on memory while the store catches up. */
const PREFETCH = 1000;

/**
 * Starts consuming the events queue on a channel; call it again on each new connection.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * import { logger } from "../log.ts";
 * declare const channel: import("amqplib").Channel;
 * declare const writer: import("../store/writer.ts").StoreWriter;
 * await recordEvents(channel, { writer, names: topology("warren"), log: logger("recorder") });
 * ```
 */
export async function recordEvents(ch: Channel, options: RecorderOptions): Promise<void> {
  await ch.prefetch(PREFETCH);
  await ch.consume(options.names.eventsQueue, (delivery) => {
    if (!delivery) {
      // Consumer cancelled by the broker (queue deleted): rebuild the connection, which declares
      // the queue again and consumes it.
      ch.close().catch(() => {});
      return;
    }
    const events = decodeEvents(delivery.content);
    if (!events) options.log.warn("dropped a malformed lifecycle event message");
    options.writer.write(events ?? []).then(() => options.afterCommit?.(events ?? [])).then(
      () => settle(() => ch.ack(delivery)),
      (error) => {
        options.log.error("cannot record events ({error}); they will be delivered again", {
          error: errorMessage(error),
        });
        setTimeout(() => settle(() => ch.nack(delivery, false, true)), 1000);
      },
    );
  });
}
