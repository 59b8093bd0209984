/**
 * Every exchange and queue Warren declares, in one place. Declarations are idempotent, so the api
 * and every worker declare what they use on each (re)connect.
 *
 * ```
 * <prefix>.tasks          direct exchange, routing key = handler name
 * <prefix>.task.<name>    quorum queue per handler, bound to <prefix>.tasks with key <name>
 * <prefix>.events         topic exchange of lifecycle events, routing key task.<name>.<state>
 * <prefix>.events.store   queue the api reads events from into the task store
 * ```
 *
 * @module
 */

import type { Channel, Replies } from "amqplib";

/** The names of Warren's exchanges and queues under one prefix. */
export interface Topology {
  tasksExchange: string;
  eventsExchange: string;
  eventsQueue: string;
  /** The queue of one handler. */
  taskQueue(handler: string): string;
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
    eventsExchange: `${prefix}.events`,
    eventsQueue: `${prefix}.events.store`,
    taskQueue: (handler) => `${prefix}.task.${handler}`,
  };
}

/** The routing key of a lifecycle event on the events exchange. */
export function eventRoutingKey(handler: string, state: string): string {
  return `task.${handler}.${state}`;
}

/** Declares the exchanges shared by all handlers. */
export async function declareExchanges(ch: Channel, names: Topology): Promise<void> {
  await ch.assertExchange(names.tasksExchange, "direct", { durable: true });
  await ch.assertExchange(names.eventsExchange, "topic", { durable: true });
}

/** Declares the queue the api consumes lifecycle events from, bound to every task event. */
export async function declareEventsQueue(ch: Channel, names: Topology): Promise<void> {
  await ch.assertQueue(names.eventsQueue, { durable: true });
  await ch.bindQueue(names.eventsQueue, names.eventsExchange, "task.#");
}

/**
 * Declares a handler's durable queue (quorum: replicated on a cluster, counts redeliveries) and
 * binds it; returns its message and consumer counts.
 */
export async function declareTaskQueue(
  ch: Channel,
  names: Topology,
  handler: string,
): Promise<Replies.AssertQueue> {
  const queue = names.taskQueue(handler);
  const reply = await ch.assertQueue(queue, {
    durable: true,
    arguments: { "x-queue-type": "quorum" },
  });
  await ch.bindQueue(queue, names.tasksExchange, handler);
  return reply;
}

/** Declares everything a process running `handlers` needs. */
export async function declareAll(ch: Channel, names: Topology, handlers: string[]): Promise<void> {
  await declareExchanges(ch, names);
  await declareEventsQueue(ch, names);
  for (const handler of handlers) await declareTaskQueue(ch, names, handler);
}

/** Deletes everything {@linkcode declareAll} declared (tests clean up with it). */
export async function deleteAll(ch: Channel, names: Topology, handlers: string[]): Promise<void> {
  for (const handler of handlers) await ch.deleteQueue(names.taskQueue(handler));
  await ch.deleteQueue(names.eventsQueue);
  await ch.deleteExchange(names.tasksExchange);
  await ch.deleteExchange(names.eventsExchange);
}
