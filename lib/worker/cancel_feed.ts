/**
 * Following the cancels stream (see `cancels.ts`): on each connection a worker reads the stream
 * from where it stopped (its start, the first time), appends a mark of its own, and takes no task
 * before it read back to that mark; then it goes on following the stream.
 *
 * @module
 */

import type { Channel, ChannelModel, ConfirmChannel } from "amqplib";
import { bindChannel } from "../amqp/connection.ts";
import { publishCancelNote } from "../amqp/publish.ts";
import type { Topology } from "../amqp/topology.ts";
import type { Logger } from "../log.ts";
import { decodeCancelNote } from "../wire.ts";
import type { Cancels } from "./cancels.ts";

/** What {@linkcode cancelFeed} needs. */
export interface CancelFeedOptions {
  names: Topology;
  cancels: Pick<Cancels, "add">;
  log: Logger;
  /** How long the broker may take to confirm the mark, and to deliver it back. */
  timeoutMs: number;
  /** Told of each cancel read after catching up: what the supervisor hears (see `supervisor.ts`). */
  onLive?(ids: string[]): void;
}

/** Messages of the stream a reader holds unacked at once. */
const PREFETCH = 500;

/** The header a stream delivery carries its offset in. */
const OFFSET_HEADER = "x-stream-offset";

/**
 * Creates a follower of the cancels stream; call `catchUp` on every new connection, before
 * consuming tasks. It resolves once every cancel appended before the call is known, and rejects
 * (so the connection is set up again) when the mark does not come back in time.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * import { logger } from "../log.ts";
 * import { createCancels } from "./cancels.ts";
 * declare const model: import("amqplib").ChannelModel;
 * declare const pub: import("amqplib").ConfirmChannel;
 * const feed = cancelFeed({
 *   names: topology("warren"), cancels: createCancels(), log: logger("worker"), timeoutMs: 5000,
 * });
 * await feed.catchUp(model, pub);
 * ```
 */
export function cancelFeed(
  options: CancelFeedOptions,
): { catchUp(model: ChannelModel, pub: ConfirmChannel): Promise<void> } {
  const { names, cancels } = options;
  /** Where reading goes on: the stream's start, then the offset after the last one read. */
  let next: number | "first" = "first";

  const read = async (ch: Channel, mark: string) => {
    const caught = Promise.withResolvers<void>();
    let live = false;
    await ch.prefetch(PREFETCH);
    await ch.consume(names.cancelsStream, (message) => {
      if (!message) return void ch.close().catch(() => {}); // the stream was deleted
      const offset = message.properties.headers?.[OFFSET_HEADER];
      if (typeof offset === "number") next = offset + 1;
      const note = decodeCancelNote(message);
      if (note?.kind === "cancel") {
        cancels.add(note.ids, note.at);
        if (live) options.onLive?.(note.ids);
      }
      if (note?.kind === "mark" && note.mark === mark) {
        live = true;
        caught.resolve();
      }
      ch.ack(message);
    }, { arguments: { [OFFSET_HEADER]: next } });
    return caught.promise;
  };

  return {
    async catchUp(model, pub) {
      const ch = bindChannel(model, await model.createChannel(), options.log);
      const mark = crypto.randomUUID();
      const caught = read(ch, mark);
      await publishCancelNote(pub, names, { kind: "mark", mark }, options.timeoutMs);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new Error(`the cancels stream did not catch up within ${options.timeoutMs} ms`)),
          options.timeoutMs,
        );
      });
      try {
        await Promise.race([caught, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
