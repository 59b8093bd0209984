/**
 * Every exchange and queue Warren declares, in one place. Declarations are idempotent, so the api
 * and every worker declare what they use on each (re)connect.
 *
 * ```
 * <prefix>.tasks          direct exchange, routing key = handler name
 * <prefix>.task.<name>    quorum queue per handler, bound to <prefix>.tasks with key <name>,
 *                         to <prefix>.delayed with key #.<name>, and to <prefix>.topics with
 *                         each pattern the handler subscribes to
 * <prefix>.topics         topic exchange of published events, routing key = the event's topic
 * <prefix>.files          quorum queue of workers' requests for chunks of uploaded files (the
 *                         api answers each by direct reply-to)
 * <prefix>.keys           quorum queue of workers' requests about idempotency keys (the api
 *                         answers each by direct reply-to)
 * <prefix>.cancels        stream of cancelled task ids: every worker reads it from its start on
 *                         each (re)connect, then follows it (see `worker/cancels.ts`)
 * <prefix>.callbacks      quorum queue of task callbacks to deliver (the api consumes it),
 *                         bound to <prefix>.delayed with key #.@callbacks for its retries
 * <prefix>.delay.<i>      the delay cascade, i = 0..21: a topic exchange and a quorum queue
 *                         whose messages wait 2^i s, then dead-letter to level i-1
 * <prefix>.delayed        topic exchange where the cascade ends; routes on to the task queues
 * <prefix>.dead           direct exchange of dead letters, routing key = handler name
 * <prefix>.dead.<name>    quorum queue per handler holding its dead tasks
 * <prefix>.events         topic exchange of lifecycle events, routing key task.<name>.<state>
 * <prefix>.events.record  quorum queue the api records events from into the task store
 * ```
 *
 * Every queue is a quorum queue (the cancels a stream): durable, and replicated on a cluster.
 *
 * ## The delay cascade
 *
 * A delay of `d` seconds is written in binary, one word per level, highest level first, and the
 * handler's name follows: 5 s for `hello` is `0.0.….1.0.1.hello`. Level `i`'s exchange sends a
 * message whose bit `i` is 1 into its queue, which holds it `2^i` s (per-queue TTL, so the head
 * always expires first) and then dead-letters it to level `i-1`'s exchange; a 0 bit passes
 * straight on. Level 0 hands it to `<prefix>.delayed`, which routes on the last word. Nothing ever
 * waits unacked in a consumer, any delay from 1 s to 48 days takes 22 queues, and no plugin is
 * needed. Dead-lettering is at-least-once (quorum queues, RabbitMQ 3.10+), so a broker restart
 * loses nothing in transit.
 *
 * @module
 */

import type { Channel, ChannelModel, GetMessage, Replies } from "amqplib";

/** How task and dead-letter queues are declared: durable, replicated on a cluster. */
const QUORUM = { durable: true, arguments: { "x-queue-type": "quorum" } };

/**
 * How long a cancel is kept: past the longest delay a POST may ask (30 days) and the backoffs
 * after it. The stream drops whole segments past it, so segments are small.
 */
export const CANCELS_KEPT_DAYS = 35;

/** The cancels stream: every worker reads it whole, so nothing is taken off it by reading. */
const CANCELS_STREAM = {
  durable: true,
  arguments: {
    "x-queue-type": "stream",
    "x-max-age": `${CANCELS_KEPT_DAYS}D`,
    "x-stream-max-segment-size-bytes": 1_000_000,
  },
};

/** Levels of the delay cascade: delays up to 2^22 - 1 s (about 48 days). */
export const DELAY_LEVELS = 22;
/** The longest delay the cascade can hold, in seconds. */
export const MAX_DELAY_SECONDS = 2 ** DELAY_LEVELS - 1;

/** The names of Warren's exchanges and queues under one prefix. */
export interface Topology {
  tasksExchange: string;
  delayedExchange: string;
  deadExchange: string;
  eventsExchange: string;
  eventsQueue: string;
  /** Where events are published (`POST /events/{topic}`, `ctx.publish`, any AMQP client). */
  topicsExchange: string;
  /** The queue of callbacks to deliver. */
  callbacksQueue: string;
  /** The queue of requests for chunks of uploaded files. */
  filesQueue: string;
  /** The queue of requests about idempotency keys. */
  keysQueue: string;
  /** The stream of cancelled tasks. */
  cancelsStream: string;
  /** The queue of one handler. */
  taskQueue(handler: string): string;
  /** The dead-letter queue of one handler. */
  deadQueue(handler: string): string;
  /** The exchange and queue of one level of the delay cascade. */
  delayLevel(level: number): string;
}

/**
 * The names under a prefix.
 *
 * @example
 * ```ts
 * topology("warren").taskQueue("countdown"); // "warren.task.countdown"
 * ```
 */
export function topology(prefix: string): Topology {
  return {
    tasksExchange: `${prefix}.tasks`,
    delayedExchange: `${prefix}.delayed`,
    deadExchange: `${prefix}.dead`,
    eventsExchange: `${prefix}.events`,
    eventsQueue: `${prefix}.events.record`,
    topicsExchange: `${prefix}.topics`,
    callbacksQueue: `${prefix}.callbacks`,
    filesQueue: `${prefix}.files`,
    keysQueue: `${prefix}.keys`,
    cancelsStream: `${prefix}.cancels`,
    taskQueue: (handler) => `${prefix}.task.${handler}`,
    deadQueue: (handler) => `${prefix}.dead.${handler}`,
    delayLevel: (level) => `${prefix}.delay.${level}`,
  };
}

/** The routing key of a lifecycle event on the events exchange. */
export function eventRoutingKey(handler: string, state: string): string {
  return `task.${handler}.${state}`;
}

/**
 * Where to publish a task that must wait `seconds` (a whole number from 1 to
 * {@linkcode MAX_DELAY_SECONDS}): the exchange of its highest set bit, and the routing key that
 * spells the delay in binary.
 *
 * @example
 * ```ts
 * delayRoute(topology("warren"), 5, "hello");
 * // { exchange: "warren.delay.2", routingKey: "0.0.….0.1.0.1.hello" }
 * ```
 */
export function delayRoute(
  names: Topology,
  seconds: number,
  handler: string,
): { exchange: string; routingKey: string } {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DELAY_SECONDS) {
    throw new RangeError(`a delay must be whole seconds from 1 to ${MAX_DELAY_SECONDS}`);
  }
  const bits = seconds.toString(2).padStart(DELAY_LEVELS, "0");
  const top = DELAY_LEVELS - 1 - bits.indexOf("1");
  return { exchange: names.delayLevel(top), routingKey: `${[...bits].join(".")}.${handler}` };
}

/** Declares the exchanges shared by all handlers, and the delay cascade. */
export async function declareExchanges(ch: Channel, names: Topology): Promise<void> {
  await ch.assertExchange(names.tasksExchange, "direct", { durable: true });
  await ch.assertExchange(names.delayedExchange, "topic", { durable: true });
  await ch.assertExchange(names.deadExchange, "direct", { durable: true });
  await ch.assertExchange(names.eventsExchange, "topic", { durable: true });
  await ch.assertExchange(names.topicsExchange, "topic", { durable: true });
  for (let level = 0; level < DELAY_LEVELS; level++) {
    const name = names.delayLevel(level);
    const next = level === 0 ? names.delayedExchange : names.delayLevel(level - 1);
    await ch.assertExchange(name, "topic", { durable: true });
    await ch.assertQueue(name, {
      durable: true,
      arguments: {
        "x-queue-type": "quorum",
        "x-message-ttl": 1000 * 2 ** level,
        "x-dead-letter-exchange": next,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
      },
    });
    // Word k of the key is bit (DELAY_LEVELS - 1 - k): "*." k times, then the bit.
    const before = "*.".repeat(DELAY_LEVELS - 1 - level);
    await ch.bindQueue(name, name, `${before}1.#`);
    await ch.bindExchange(next, name, `${before}0.#`);
  }
}

/**
 * The last word of a callback's key in the delay cascade: no handler is named so (a handler's
 * name has no `@`), so a delayed callback reaches only the callbacks queue.
 */
export const CALLBACKS_ROUTE = "@callbacks";

/** Declares the queue of callbacks, and binds it for its delayed retries. */
export async function declareCallbacksQueue(ch: Channel, names: Topology): Promise<void> {
  await ch.assertQueue(names.callbacksQueue, QUORUM);
  await ch.bindQueue(names.callbacksQueue, names.delayedExchange, `#.${CALLBACKS_ROUTE}`);
}

/** Declares the queue the api consumes lifecycle events from, bound to every task event. */
export async function declareEventsQueue(ch: Channel, names: Topology): Promise<void> {
  await ch.assertQueue(names.eventsQueue, QUORUM);
  await ch.bindQueue(names.eventsQueue, names.eventsExchange, "task.#");
}

/**
 * Warren before 0.3 recorded events from a classic queue, `<prefix>.events.store`, which a
 * cluster does not replicate. If one is there, it is unbound (no new events reach it), the events
 * it holds are moved to {@linkcode Topology.eventsQueue} (each acked only once the move is
 * confirmed) and it is deleted. Returns how many events moved, or undefined when there was none.
 * `probe` must be a channel of its own: checking a missing queue closes it.
 */
export async function migrateEventsQueue(
  probe: Channel,
  names: Topology,
  move: (message: GetMessage) => Promise<void>,
): Promise<number | undefined> {
  const legacy = `${names.eventsQueue.slice(0, -".record".length)}.store`;
  try {
    await probe.checkQueue(legacy);
  } catch {
    return undefined; // none: the probe is closed, and nothing is to be done
  }
  await probe.unbindQueue(legacy, names.eventsExchange, "task.#");
  let moved = 0;
  for (let message = await probe.get(legacy); message; message = await probe.get(legacy)) {
    await move(message);
    probe.ack(message);
    moved++;
  }
  await probe.deleteQueue(legacy, { ifEmpty: true });
  await probe.close();
  return moved;
}

/** A handler as its queues are declared: its name, and the topic patterns it subscribes to. */
export interface QueueSpec {
  name: string;
  subscribe?: readonly string[];
}

/**
 * Declares a handler's durable queues (quorum: replicated on a cluster, counts redeliveries) and
 * binds them; returns the task queue's message and consumer counts. A pattern the handler no
 * longer subscribes to stays bound (AMQP cannot list bindings): its worker drops what it brings.
 */
export async function declareTaskQueue(
  ch: Channel,
  names: Topology,
  { name: handler, subscribe = [] }: QueueSpec,
): Promise<Replies.AssertQueue> {
  const queue = names.taskQueue(handler);
  const reply = await ch.assertQueue(queue, QUORUM);
  await ch.bindQueue(queue, names.tasksExchange, handler);
  await ch.bindQueue(queue, names.delayedExchange, `#.${handler}`);
  for (const pattern of subscribe) await ch.bindQueue(queue, names.topicsExchange, pattern);
  const dead = names.deadQueue(handler);
  await ch.assertQueue(dead, QUORUM);
  await ch.bindQueue(dead, names.deadExchange, handler);
  return reply;
}

/**
 * The counts of a handler's task and dead-letter queues; a missing queue counts as empty. It
 * checks, and never declares: declaring a quorum queue the moment after someone deleted it can
 * leave the old queue's consumer attached to the new one without being told (RabbitMQ 3.10), a
 * consumer that then takes deliveries it never gets. The consumer's own worker declares the queue
 * again after it has heard of the deletion. `probe` lends a channel that a check of a missing
 * queue may close.
 */
export async function countQueues(
  probe: Probe,
  names: Topology,
  handler: string,
): Promise<{ messages: number; consumers: number; dead: number }> {
  const count = (queue: string): Promise<{ messageCount: number; consumerCount: number }> =>
    probe((ch) => ch.checkQueue(queue)).catch((error) => {
      if ((error as { code?: number }).code === 404) return { messageCount: 0, consumerCount: 0 };
      throw error;
    });
  const [task, dead] = [
    await count(names.taskQueue(handler)),
    await count(names.deadQueue(handler)),
  ];
  return { messages: task.messageCount, consumers: task.consumerCount, dead: dead.messageCount };
}

/** Lends a channel for checks that may close it; see {@linkcode prober}. */
export type Probe = <T>(use: (ch: Channel) => Promise<T>) => Promise<T>;

/**
 * Lends a channel of `model` for checks that may close it (a check of a missing queue does):
 * a closed one is replaced on the next use.
 *
 * @example
 * ```ts
 * declare const model: import("amqplib").ChannelModel;
 * const probe = prober(model);
 * await probe((ch) => ch.checkQueue("warren.task.hello"));
 * ```
 */
export function prober(model: ChannelModel): Probe {
  let channel: Promise<Channel> | undefined;
  return async <T>(use: (ch: Channel) => Promise<T>): Promise<T> => {
    channel ??= model.createChannel().then((ch) => {
      ch.on("error", () => {}); // its closing is the answer, not a failure of the connection
      ch.on("close", () => channel = undefined);
      return ch;
    });
    return use(await channel);
  };
}

/** Declares everything a process running `handlers` needs. */
export async function declareAll(
  ch: Channel,
  names: Topology,
  handlers: QueueSpec[],
): Promise<void> {
  await declareExchanges(ch, names);
  await declareEventsQueue(ch, names);
  await ch.assertQueue(names.filesQueue, QUORUM);
  await ch.assertQueue(names.keysQueue, QUORUM);
  await ch.assertQueue(names.cancelsStream, CANCELS_STREAM);
  for (const handler of handlers) await declareTaskQueue(ch, names, handler);
}

/** Deletes everything {@linkcode declareAll} declared (tests clean up with it). */
export async function deleteAll(
  ch: Channel,
  names: Topology,
  handlers: (string | QueueSpec)[],
): Promise<void> {
  for (const handler of handlers) {
    const name = typeof handler === "string" ? handler : handler.name;
    await ch.deleteQueue(names.taskQueue(name));
    await ch.deleteQueue(names.deadQueue(name));
  }
  for (let level = 0; level < DELAY_LEVELS; level++) {
    await ch.deleteQueue(names.delayLevel(level));
    await ch.deleteExchange(names.delayLevel(level));
  }
  await ch.deleteQueue(names.eventsQueue);
  await ch.deleteQueue(names.callbacksQueue);
  await ch.deleteQueue(names.filesQueue);
  await ch.deleteQueue(names.keysQueue);
  await ch.deleteQueue(names.cancelsStream);
  for (
    const exchange of [
      names.tasksExchange,
      names.delayedExchange,
      names.deadExchange,
      names.eventsExchange,
      names.topicsExchange,
    ]
  ) await ch.deleteExchange(exchange);
}
