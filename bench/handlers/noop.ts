import type { HandlerConfig } from "warren";

export const config: HandlerConfig = {
  workers: Number(Deno.env.get("BENCH_NOOP_WORKERS") ?? 1),
  prefetch: Number(Deno.env.get("BENCH_NOOP_PREFETCH") ?? 64),
  permissions: { env: ["BENCH_NOOP_WORKERS", "BENCH_NOOP_PREFETCH"] },
};

/** Does nothing: what is measured is Warren's own cost per task. */
export default function noop(payload: unknown) {
  return payload;
}
