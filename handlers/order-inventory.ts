/**
 * Seed 001's inventory worker: reserves the items of each order created, and puts them back when
 * an order is cancelled (`order.*` hears both).
 */

import type { Context, HandlerConfig } from "warren";

export const config: HandlerConfig = {
  subscribe: ["order.*"],
  schema: { type: "object", properties: { order_id: { type: "integer" } }, required: ["order_id"] },
};

export default function (payload: { order_id: number; items?: string[] }, ctx: Context) {
  const items = payload.items ?? [];
  const action = ctx.event?.topic === "order.cancelled" ? "released" : "reserved";
  ctx.log.info("{action} {count} item(s) of order {order}", {
    action,
    count: items.length,
    order: payload.order_id,
  });
  return { [action]: items, order_id: payload.order_id };
}
