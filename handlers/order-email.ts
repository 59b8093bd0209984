/**
 * Seed 001's email worker: sends the confirmation of each order created. One of three handlers
 * subscribed to `order.created`: one publish, three tasks, each with its own retries.
 *
 * @example
 * ```sh
 * curl -X POST localhost:8000/events/order.created \
 *   -d '{"order_id":42,"email":"ada@example.com","items":["book"],"total":12.5}'
 * ```
 */

import type { Context, HandlerConfig } from "warren";

export const config: HandlerConfig = {
  subscribe: ["order.created"],
  schema: {
    type: "object",
    properties: { order_id: { type: "integer" }, email: { type: "string" } },
    required: ["order_id", "email"],
  },
};

export default async function (payload: { order_id: number; email: string }, ctx: Context) {
  ctx.log.info("emailing the confirmation of order {order} to {email}", {
    order: payload.order_id,
    email: payload.email,
  });
  await new Promise((resolve) => setTimeout(resolve, 500)); // the mail server's round trip
  return { sent: "confirmation", to: payload.email, order_id: payload.order_id };
}
