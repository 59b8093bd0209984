/**
 * The operations on a handler's dead-letter queue `<prefix>.dead.<handler>`: replay (one letter,
 * or all) and purge. (Listing reads the store, never the queue.) No letter is ever given back
 * with a nack: each nack counts a delivery, and from RabbitMQ 4.0 a quorum queue drops a message
 * past 20 of them.
 *
 * @module
 */

import type { Channel, ConfirmChannel, Message } from "amqplib";
import { publishConfirmed, sendTask } from "../amqp/publish.ts";
import type { Topology } from "../amqp/topology.ts";
import type { TaskStore } from "../store/store.ts";
import type { StoreWriter } from "../store/writer.ts";
import { type DeadLetter, readDeadLetter, republishedProperties } from "../wire.ts";
import type { DeadLetters } from "./deps.ts";
import { UnavailableError } from "./errors.ts";

/** What {@linkcode deadLetterOperations} needs. */
export interface DeadLetterOptions {
  /** The live channels: one for the operations, one confirm channel to publish. */
  session(): { dead: Channel; pub: ConfirmChannel } | undefined;
  names: Topology;
  store: TaskStore;
  writer: StoreWriter;
  timeoutMs: number;
}

/**
 * The dead-letter operations of the api, one at a time (they share a channel), each on the live
 * session: a replay is recorded as the task's next run, and what leaves the queue leaves the
 * store's list too.
 *
 * @example
 * ```ts
 * declare const options: DeadLetterOptions;
 * const dead = deadLetterOperations(options);
 * await dead.replay("hello"); // every letter of hello
 * ```
 */
export function deadLetterOperations(options: DeadLetterOptions): DeadLetters {
  const { names, store, writer } = options;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(action: (ch: Channel, pub: ConfirmChannel) => Promise<T>): Promise<T> => {
    const next = queue.then(() => {
      const session = options.session();
      if (!session) throw new UnavailableError("not connected to the broker");
      return action(session.dead, session.pub);
    });
    queue = next.catch(() => {});
    return next;
  };
  return {
    replay: (handler, id) =>
      serial(async (ch, pub) => {
        const { ids } = await replayDeadLetters(ch, pub, names, handler, {
          id,
          timeoutMs: options.timeoutMs,
          onReplayed: (letter) =>
            writer.write([{
              type: "queued",
              id: letter.id,
              handler,
              attempt: 0,
              replay: letter.replay,
              at: Date.now(),
            }]),
        });
        // Not in the queue after all (purged elsewhere, or its letter never sent): the list
        // must stop showing it.
        if (id !== undefined && ids.length === 0) await store.dropDeadLetters([id]);
        return ids;
      }),
    purge: (handler) =>
      serial(async (ch) => {
        const ids = await purgeDeadLetters(ch, names, handler);
        await store.dropDeadLetters(ids);
        return ids.length;
      }),
  };
}

/** What a replay did: the ids it put back on the task queue. */
export interface Replayed {
  ids: string[];
}

/**
 * Sends dead letters back to the handler's task queue with a fresh attempt count, the same id
 * and the replay count one higher: all of them (each once, even if it dies again meanwhile), or
 * only the one with `id`. Each is acked only after its republish was confirmed, so a failure
 * halfway loses nothing. `onReplayed` hears of each before the next is taken.
 *
 * No letter is ever given back with a nack: each would count a delivery, and from RabbitMQ 4.0 a
 * quorum queue drops a message past 20 of them. A letter passed over on the way to `id` is
 * published again at the back of the queue (confirmed) and then acked.
 */
export async function replayDeadLetters(
  ch: Channel,
  pub: ConfirmChannel,
  names: Topology,
  handler: string,
  options: { id?: string; timeoutMs: number; onReplayed(letter: DeadLetter): Promise<void> },
): Promise<Replayed> {
  const queue = names.deadQueue(handler);
  const { messageCount: known } = await ch.checkQueue(queue);
  const ids: string[] = [];
  // Only the letters there at the start: one replayed and dead again, or one passed over and put
  // at the back, must not be taken twice.
  for (let taken = 0; taken < known; taken++) {
    const message = await ch.get(queue, { noAck: false });
    if (!message) break;
    const letter = readDeadLetter(message);
    if (options.id !== undefined && letter.id !== options.id) {
      await putBack(pub, names, handler, message, options.timeoutMs);
      ch.ack(message);
      continue;
    }
    await sendTask(
      pub,
      names,
      { id: letter.id, handler, body: message.content, createdAt: letter.createdAt },
      options.timeoutMs,
      { replay: letter.replay + 1 },
    );
    ch.ack(message);
    ids.push(letter.id);
    await options.onReplayed({ ...letter, replay: letter.replay + 1 });
    if (options.id !== undefined) break;
  }
  return { ids };
}

/** Publishes a dead letter again, as it is, at the back of its queue; waits for the confirm. */
function putBack(
  pub: ConfirmChannel,
  names: Topology,
  handler: string,
  message: Message,
  timeoutMs: number,
): Promise<void> {
  const properties = republishedProperties(message);
  return publishConfirmed(pub, names.deadExchange, handler, message.content, properties, timeoutMs);
}

/**
 * Empties a handler's dead-letter queue of the letters it held when asked; returns the ids of
 * the letters dropped (so the store can forget them too).
 */
export async function purgeDeadLetters(
  ch: Channel,
  names: Topology,
  handler: string,
): Promise<string[]> {
  const queue = names.deadQueue(handler);
  const { messageCount: known } = await ch.checkQueue(queue);
  const ids: string[] = [];
  for (let taken = 0; taken < known; taken++) {
    const message = await ch.get(queue, { noAck: true });
    if (!message) break;
    ids.push(String(message.properties.messageId ?? ""));
  }
  return ids;
}
