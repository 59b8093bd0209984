/**
 * The outbox: a worker's lifecycle events, gathered for one turn of the event loop and sent as
 * one message per handler and event type, so a busy worker sends a few messages for many tasks.
 *
 * @module
 */

import { createFlusher } from "../flusher.ts";
import type { TaskEvent } from "../events.ts";

/** Flushes at most this often: a busy worker's events gather for up to 2 ms. */
const FLUSH_INTERVAL_MS = 2;

/** See {@linkcode createOutbox}. */
export interface Outbox {
  /** Queues an event; resolves when the broker confirmed the message that carried it. */
  add(event: TaskEvent): Promise<void>;
  /** Resolves once every event queued so far was handed to `send` (not confirmed yet). */
  sent(): Promise<void>;
}

/**
 * Creates an outbox that hands each batch to `send` (one call per handler and event type).
 *
 * @example
 * ```ts
 * import { publishEvents } from "../amqp/publish.ts";
 * import { topology } from "../amqp/topology.ts";
 * declare const ch: import("amqplib").ConfirmChannel;
 * const outbox = createOutbox((events) => publishEvents(ch, topology("warren"), events, 10_000));
 * await outbox.add({ type: "succeeded", id: "t-1", handler: "hello", attempt: 1, at: Date.now() });
 * ```
 */
export function createOutbox(send: (events: TaskEvent[]) => Promise<void>, maxBatch = 500): Outbox {
  let groups = new Map<string, { events: TaskEvent[]; done: PromiseWithResolvers<void> }>();
  let flushed = Promise.withResolvers<void>();
  const flush = () => {
    const batches = groups;
    groups = new Map();
    for (const { events, done } of batches.values()) send(events).then(done.resolve, done.reject);
    flushed.resolve();
    flushed = Promise.withResolvers<void>();
  };
  const schedule = createFlusher(flush, FLUSH_INTERVAL_MS);

  return {
    sent() {
      if (groups.size === 0) return Promise.resolve();
      schedule();
      return flushed.promise;
    },
    add(event) {
      const key = `${event.handler}\u0000${event.type}`;
      let group = groups.get(key);
      if (!group || group.events.length >= maxBatch) {
        if (group) flush();
        group = { events: [], done: Promise.withResolvers<void>() };
        groups.set(key, group);
      }
      group.events.push(event);
      schedule();
      return group.done.promise;
    },
  };
}
