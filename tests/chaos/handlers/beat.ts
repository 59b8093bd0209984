import type { Context, HandlerConfig } from "warren";

/** A task every second, through every fault. */
export const config: HandlerConfig = { schedule: "* * * * * *" };

const log = Deno.env.get("CHAOS_RUN_LOG");

/** Writes one line per run to CHAOS_RUN_LOG, as the chaos handler does. */
export default function beat(_payload: unknown, ctx: Context) {
  if (log) Deno.writeTextFileSync(log, `${ctx.id} ${ctx.attempt}\n`, { append: true });
  return { beat: ctx.id };
}
