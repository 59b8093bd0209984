/**
 * Counts down `seconds`, reporting progress each second (seed 002's countdown task).
 *
 * @example
 * ```sh
 * curl -X POST localhost:8000/tasks/countdown -d '{"seconds":5}'
 * ```
 */

import type { Context, HandlerConfig } from "warren";

export const config: HandlerConfig = {
  workers: 1,
  prefetch: 4,
  timeout: "10m",
  schema: {
    type: "object",
    properties: { seconds: { type: "integer", minimum: 0, maximum: 3600 } },
    required: ["seconds"],
    additionalProperties: false,
  },
};

export default async function countdown(payload: { seconds: number }, ctx: Context) {
  for (let left = payload.seconds; left > 0; left--) {
    ctx.progress({ remaining: left, total: payload.seconds });
    ctx.log.info("{left} seconds left", { left });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    ctx.signal.throwIfAborted();
  }
  ctx.progress({ remaining: 0, total: payload.seconds });
  return { counted: payload.seconds };
}
