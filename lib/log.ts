/**
 * Logging: structured records through LogTape, one line each, on standard output, with every
 * registered secret replaced by `***` before the line is written.
 *
 * @module
 */

import {
  configureSync,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogRecord,
} from "@logtape/logtape";

export type { Logger };

/** How logs are set up in one isolate (the main thread, or one Web Worker). */
export interface LogOptions {
  level: "debug" | "info" | "warning" | "error";
  format: "text" | "json";
  /** Strings that must never be written: the AMQP password, the API token. */
  secrets: string[];
}

/**
 * Configures logging for this isolate. Call it once, first thing, in the main module and in each
 * worker.
 */
export function setupLogging(options: LogOptions): void {
  const format = options.format === "json"
    ? jsonLine
    : getTextFormatter({ timestamp: "date-time-tz", value: "bare", category: "." });
  const secrets = options.secrets.filter((secret) => secret.length > 0);
  const sink = (record: LogRecord) => {
    console.log(redact(format(record), secrets).trimEnd());
  };
  configureSync({
    reset: true,
    sinks: { out: sink },
    loggers: [
      { category: ["warren"], lowestLevel: options.level, sinks: ["out"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

/**
 * One JSON object per record: its properties, then `time`, `level`, `logger` and the message with
 * its values filled in as they read (strings bare).
 */
function jsonLine(record: LogRecord): string {
  const message = record.message
    .map((part, i) => i % 2 === 0 || typeof part === "string" ? part : JSON.stringify(part))
    .join("");
  return JSON.stringify({
    ...record.properties,
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    message,
  });
}

/** Replaces every secret in a text with `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.replaceAll(secret, "***");
  return out;
}

/**
 * The logger of one part of Warren.
 *
 * @example
 * ```ts
 * const log = logger("api");
 * log.info("listening on {url}", { url: "http://127.0.0.1:8000" });
 * ```
 */
export function logger(...category: string[]): Logger {
  return getLogger(["warren", ...category]);
}

/** The message of anything thrown, for a log line or a problem detail. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
