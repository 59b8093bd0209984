/**
 * Seed 001's analytics worker: counts every order event (`order.#`: any words after `order`),
 * and publishes a milestone event of its own with `ctx.publish` for big orders.
 */

import type { Context, HandlerConfig } from "warren";

export const config: HandlerConfig = { subscribe: ["order.#"] };

export default async function (payload: { order_id?: number; total?: number }, ctx: Context) {
  const topic = ctx.event?.topic ?? "order.unknown";
  if (topic === "order.created" && (payload.total ?? 0) >= 1000) {
    await ctx.publish("analytics.big-order", { order_id: payload.order_id, total: payload.total });
  }
  return { counted: topic, total: payload.total ?? null };
}
