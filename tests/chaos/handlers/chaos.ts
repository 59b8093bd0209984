import { type Context, type HandlerConfig, PermanentError } from "warren";

/** Where the tests' temporary files are: the only place it writes. */
const TMP = Deno.env.get("TMPDIR") ?? "/tmp";

export const config: HandlerConfig = {
  permissions: { env: ["CHAOS_RUN_LOG", "TMPDIR"], write: [TMP] },
  workers: 2,
  prefetch: 8,
  retries: 2,
  backoff: { min: "1s", max: "2s" },
};

const log = Deno.env.get("CHAOS_RUN_LOG");

/**
 * Works for a few ms and writes one line per run to CHAOS_RUN_LOG. `mode` "retry" fails its
 * first attempt; "dead" fails for good.
 */
export default async function chaos(payload: { mode: "ok" | "retry" | "dead" }, ctx: Context) {
  await new Promise((resolve) => setTimeout(resolve, 5));
  if (log) Deno.writeTextFileSync(log, `${ctx.id} ${ctx.attempt}\n`, { append: true });
  if (payload.mode === "dead") throw new PermanentError("planned death");
  if (payload.mode === "retry" && ctx.attempt === 1) throw new Error("planned failure");
  return { attempt: ctx.attempt };
}
