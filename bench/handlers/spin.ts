import type { HandlerConfig } from "warren";

export const config: HandlerConfig = {
  workers: Number(Deno.env.get("BENCH_SPIN_WORKERS") ?? 2),
  permissions: { env: ["BENCH_SPIN_WORKERS"] },
};

/** CPU-bound work of a fixed size (`rounds` of hashing arithmetic), never yielding. */
export default function spin(payload: { rounds?: number }) {
  let x = 0x9e3779b9;
  for (let i = 0; i < (payload.rounds ?? 2_000_000); i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}
