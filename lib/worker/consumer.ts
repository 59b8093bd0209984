/**
 * Consuming a handler's queue: a broker link of the worker's own that, on every (re)connect,
 * opens a confirm channel for publishing and a channel for consuming, declares the topology,
 * sets the prefetch, catches up with what must be known first (the cancels) and consumes, then checks that the queue has its consumer. Each delivery goes
 * to `onDelivery` with the way to ack it; acks go out batched (see `acks.ts`), only ever on the
 * channel that delivered. A stop cancels the consumer, lets the deliveries in hand finish, makes
 * sure their acks reached the broker, and closes the connection.
 *
 * @module
 */

import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { bindChannel, openLink } from "../amqp/connection.ts";
import { declareAll, type Topology } from "../amqp/topology.ts";
import type { Logger } from "../log.ts";
import { matches } from "../topics.ts";
import { type Acks, createAcks } from "./acks.ts";

/** One connection's channels. */
interface Session {
  model: ChannelModel;
  pub: ConfirmChannel;
  sub: Channel;
  /** Acks of the deliveries of `sub`. */
  acks: Acks;
  consumerTag?: string;
}

/** What {@linkcode startConsumer} needs. */
export interface ConsumerOptions {
  /** The broker's nodes (see `Config.amqpUrls`). */
  urls: readonly string[];
  /** Shown in the broker's management UI. */
  name: string;
  names: Topology;
  handler: string;
  /** The topic patterns the handler subscribes to (see `topics.ts`). */
  subscribe: readonly string[];
  prefetch: number;
  log: Logger;
  /** Works a delivery through; `ack` acks it on its own channel. */
  onDelivery(delivery: ConsumeMessage, ack: () => void): Promise<void>;
  /** The consumer is up (after every reconnect too). */
  onUp(): void;
  /** The connection is lost; it reconnects by itself. */
  onDown(): void;
  /**
   * Runs on every (re)connect once the topology is declared, before consuming: what a task needs
   * known before it runs (the cancels, see `cancel_feed.ts`). When it rejects, the connection is
   * set up again.
   */
  beforeConsume?(model: ChannelModel, pub: ConfirmChannel): Promise<void>;
  /** Opens the link (a test passes a fake broker); default {@linkcode openLink}. */
  open?: typeof openLink;
}

/** A running consumer; see {@linkcode startConsumer}. */
export interface Consumer {
  /** The live publishing channel, or undefined while disconnected. */
  channel(): ConfirmChannel | undefined;
  /** Opens a channel of its own on the live connection (reading a file); throws while down. */
  openChannel(): Promise<Channel>;
  /** Whether {@linkcode Consumer.stop} has finished with the deliveries in hand. */
  stopped(): boolean;
  /** Stops consuming, finishes what it holds, flushes the acks, closes the connection. */
  stop(): Promise<void>;
}

/**
 * Connects and consumes the handler's queue.
 *
 * @example
 * ```ts
 * declare const options: ConsumerOptions;
 * const consumer = startConsumer(options);
 * await consumer.stop();
 * ```
 */
export function startConsumer(options: ConsumerOptions): Consumer {
  const { names, log } = options;
  const queue = names.taskQueue(options.handler);
  const inflight = new Set<Promise<void>>();
  let stopping = false;
  let stopped = false;
  /**
   * The session being set up: it delivers as soon as it consumes, before the link has it (the
   * check of the queue's consumer is still out), and what it delivers publishes on it.
   */
  let settingUp: Session | undefined;
  const live = () => link.session() ?? settingUp;

  /**
   * Whether a delivery is an event of a topic the handler no longer subscribes to, which a binding
   * left from an earlier config brought (AMQP cannot list a queue's bindings to remove it): it is
   * acked and dropped.
   */
  const unsubscribed = (delivery: ConsumeMessage): boolean => {
    const { exchange, routingKey } = delivery.fields;
    if (exchange !== names.topicsExchange) return false;
    if (options.subscribe.some((pattern) => matches(pattern, routingKey))) return false;
    log.warn(
      "dropped an event of topic {topic}: {handler} no longer subscribes to it (a binding of " +
        "its queue to {exchange} from an earlier config is left; unbind it to stop this)",
      { topic: routingKey, handler: options.handler, exchange },
    );
    return true;
  };

  const consume = async (session: Session) => {
    const { sub } = session;
    const reply = await sub.consume(queue, (delivery) => {
      if (!delivery) {
        // The broker cancelled the consumer (the queue was deleted): never sit there with no
        // consumer. Closing the channel closes the connection, and the link rebuilds both.
        sub.close().catch(() => {});
        return;
      }
      session.acks.track(delivery);
      if (unsubscribed(delivery)) return session.acks.ack(delivery);
      const work = options.onDelivery(delivery, () => session.acks.ack(delivery))
        .finally(() => inflight.delete(work));
      inflight.add(work);
    });
    session.consumerTag = reply.consumerTag;
    // Verify, rather than assume, that the queue has its consumer again.
    const { consumerCount } = await sub.checkQueue(queue);
    if (consumerCount === 0) throw new Error(`queue ${queue} has no consumer after consume`);
  };

  const link = (options.open ?? openLink)<Session>({
    urls: options.urls,
    name: options.name,
    log,
    setup: async (model: ChannelModel) => {
      const pub = bindChannel(model, await model.createConfirmChannel(), log);
      const sub = bindChannel(model, await model.createChannel(), log);
      await declareAll(sub, names, [{ name: options.handler, subscribe: options.subscribe }]);
      await sub.prefetch(options.prefetch);
      const session: Session = { model, pub, sub, acks: createAcks(sub) };
      await options.beforeConsume?.(model, pub);
      settingUp = session;
      try {
        if (!stopping) await consume(session);
      } finally {
        settingUp = undefined;
      }
      return session;
    },
    onUp: options.onUp,
    onDown: options.onDown,
  });

  /**
   * Sends the acks waiting on a session's channel and waits until the broker has them: one round
   * trip on the same channel (frames of a channel are handled in order). Closing the connection
   * at once would lose them, as amqplib may put the connection's close ahead of the channel's
   * acks.
   */
  const flushAcks = async (session: Session | undefined) => {
    if (!session) return;
    session.acks.flush();
    // basic.qos is a harmless round trip: its answer comes after the broker took the acks.
    await session.sub.prefetch(options.prefetch).catch(() => {});
  };

  return {
    channel: () => live()?.pub,
    openChannel() {
      const model = live()?.model;
      if (!model) throw new Error("not connected to the broker; try again");
      return model.createChannel();
    },
    stopped: () => stopped,
    async stop() {
      stopping = true;
      const session = link.session();
      if (session?.consumerTag) await session.sub.cancel(session.consumerTag).catch(() => {});
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      await flushAcks(link.session());
      stopped = true;
      await link.close();
    },
  };
}
