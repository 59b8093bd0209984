/**
 * HTTP load for the benchmark: wrk (from Debian's packages) when installed, else a fetch-based
 * generator in this process. Both report requests per second, latency percentiles and every
 * answer that was not a 202.
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";

/** The HTTP load generator: wrk, or fetch in this process. */
export type Generator = "wrk" | "deno-fetch";

/** What a load run measured. */
export interface LoadResult {
  generator: Generator;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers other than 202, plus socket errors. */
  failures: number;
}

/** Options of {@linkcode postLoad}. */
export interface LoadOptions {
  generator: Generator;
  url: string;
  connections: number;
  seconds: number;
  body: string;
  /** GET instead of POST (`body` is then not sent): for an app whose enqueue route is a GET. */
  method?: "GET" | "POST";
}

/** Whether wrk is on the PATH. */
export async function hasWrk(): Promise<boolean> {
  try {
    const { code } = await new Deno.Command("wrk", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0 || code === 1; // wrk --version exits 1 after printing its usage
  } catch {
    return false;
  }
}

/** POSTs `body` to `url` (or GETs it) from `connections` keep-alive connections for `seconds`. */
export function postLoad(options: LoadOptions): Promise<LoadResult> {
  return options.generator === "wrk" ? wrkLoad(options) : fetchLoad(options);
}

async function wrkLoad(options: LoadOptions): Promise<LoadResult> {
  const script = fromFileUrl(new URL("./wrk.lua", import.meta.url));
  const { stdout, stderr, code } = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      "--timeout",
      "10s",
      "-s",
      script,
      options.url,
    ],
    env: { WRK_BODY: options.body, WRK_METHOD: options.method ?? "POST" },
  }).output();
  const text = new TextDecoder().decode(stdout);
  const line = text.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (code !== 0 || !line) {
    throw new Error(`wrk failed (${code}): ${text}${new TextDecoder().decode(stderr)}`);
  }
  const r = JSON.parse(line.slice("WRK_JSON ".length));
  return {
    generator: "wrk",
    requests: r.requests,
    perSecond: r.requests / (r.duration_us / 1e6),
    p50Ms: r.p50_us / 1000,
    p99Ms: r.p99_us / 1000,
    failures: r.not202 + r.errors,
  };
}

async function fetchLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let failures = 0;
  const deadline = performance.now() + options.seconds * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: options.connections }, async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const response = options.method === "GET"
          ? await fetch(options.url)
          : await fetch(options.url, { method: "POST", body: options.body });
        await response.body?.cancel();
        if (response.status !== 202) failures++;
      } catch {
        failures++;
      }
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    generator: "deno-fetch",
    requests: latencies.length,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    failures,
  };
}

/** The p-th percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
