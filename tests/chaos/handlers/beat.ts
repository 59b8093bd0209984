import type { Context, HandlerConfig } from "warren";

/** Where the tests' temporary files are: the only place it writes. */
const TMP = Deno.env.get("TMPDIR") ?? "/tmp";

/** A task every second, through every fault. */
export const config: HandlerConfig = {
  schedule: "* * * * * *",
  permissions: { env: ["CHAOS_RUN_LOG", "TMPDIR"], write: [TMP] },
};

const log = Deno.env.get("CHAOS_RUN_LOG");

/** Writes one line per run to CHAOS_RUN_LOG, as the chaos handler does. */
export default function beat(_payload: unknown, ctx: Context) {
  if (log) Deno.writeTextFileSync(log, `${ctx.id} ${ctx.attempt}\n`, { append: true });
  return { beat: ctx.id };
}
