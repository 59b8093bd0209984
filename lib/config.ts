/**
 * Warren's configuration: environment variables and command-line flags, turned into one typed,
 * validated {@linkcode Config}. Every bad value raises a {@linkcode ConfigError} whose one-line
 * message names the variable or flag to fix. The AMQP password never appears in a message.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseDuration } from "./duration.ts";

/** Which parts of Warren this process runs. */
export type Role = "all" | "api" | "worker";

/** Everything Warren reads from its environment, validated. */
export interface Config {
  /**
   * Broker URL, with credentials. Log lines mask its password whatever they print (the logger
   * redacts {@linkcode secretsOf}); {@linkcode redactUrl} makes a URL safe to show on purpose.
   */
  amqpUrl: string;
  host: string;
  port: number;
  /** Folder of handler modules. */
  handlersDir: string;
  /** Prefix of every exchange and queue name, so several Warrens can share one broker. */
  prefix: string;
  /** Path of the SQLite task store. */
  storePath: string;
  /**
   * Bearer token for every route that holds data (all but the health checks and the pages of
   * the dashboard and the API docs); undefined means no auth.
   */
  apiToken: string | undefined;
  /** Set by `--insecure`: allows a non-loopback HOST without a token. */
  insecure: boolean;
  role: Role;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  /** How long POST /tasks waits for the broker's confirm before answering 503. */
  publishTimeoutMs: number;
  /** Publishes awaiting the broker's confirm past which POST /tasks answers 429. */
  maxPending: number;
  /** How long a stop waits for in-flight handlers. */
  shutdownGraceMs: number;
  logLevel: "debug" | "info" | "warning" | "error";
  logFormat: "text" | "json";
}

/** A bad setting; its message is one line that names the variable or flag. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The result of {@linkcode loadConfig}: the config and warnings worth logging at start-up. */
export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

const DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672";
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/**
 * Reads the configuration from environment variables and flags.
 *
 * @example
 * ```ts
 * const { config, warnings } = loadConfig(Deno.env.toObject(), Deno.args);
 * ```
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  args: string[] = [],
): LoadedConfig {
  const flags = parseFlags(args);
  const warnings: string[] = [];

  const broker = parseAmqpUrl(env.AMQP_URL || DEFAULT_AMQP_URL);
  // Heartbeats find a dead peer, and free the deliveries of a worker that had to be terminated,
  // within about two intervals; RabbitMQ's own default (60 s) is slow for that.
  if (!broker.searchParams.has("heartbeat")) broker.searchParams.set("heartbeat", "5");
  const amqpUrl = broker.toString();
  if (decodeURIComponent(broker.username || "guest") === "guest") {
    warnings.push(
      "AMQP_URL uses RabbitMQ's guest account, which the broker only accepts from localhost: " +
        "set AMQP_URL with a user of your own for anything else",
    );
  }

  const host = flags.host ?? env.HOST ?? "127.0.0.1";
  if (host.trim() === "") throw new ConfigError("HOST must not be empty");
  const port = parseInteger(
    flags.port ?? env.PORT ?? "8000",
    flags.port ? "--port" : "PORT",
    0,
    65535,
  );

  const prefix = env.WARREN_PREFIX ?? "warren";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(prefix)) {
    throw new ConfigError(
      `WARREN_PREFIX must be 1-100 letters, digits, ".", "-" or "_" (got "${prefix}")`,
    );
  }

  const storePath = env.WARREN_STORE ?? "./data/warren.db";
  if (/^postgres(ql)?:/i.test(storePath)) {
    throw new ConfigError(
      "WARREN_STORE: PostgreSQL is not supported yet; use a file path for the SQLite store",
    );
  }
  if (storePath.trim() === "") throw new ConfigError("WARREN_STORE must not be empty");

  const apiToken = env.WARREN_API_TOKEN || undefined;
  if (apiToken !== undefined && apiToken.length < 16) {
    throw new ConfigError("WARREN_API_TOKEN must be at least 16 characters long");
  }
  const insecure = flags.insecure ?? parseBoolean(env.WARREN_INSECURE, "WARREN_INSECURE");
  if (!LOOPBACK_HOSTS.has(host) && !apiToken && !insecure) {
    throw new ConfigError(
      `HOST=${host} is reachable from other machines: set WARREN_API_TOKEN, ` +
        "or pass --insecure (WARREN_INSECURE=1) to serve without authentication",
    );
  }

  const role = flags.role ?? env.WARREN_ROLE ?? "all";
  if (role !== "all" && role !== "api" && role !== "worker") {
    throw new ConfigError(
      `${flags.role ? "--role" : "WARREN_ROLE"} must be all, api or worker (got "${role}")`,
    );
  }

  const logLevel = env.WARREN_LOG_LEVEL ?? "info";
  if (!["debug", "info", "warning", "error"].includes(logLevel)) {
    throw new ConfigError(
      `WARREN_LOG_LEVEL must be debug, info, warning or error (got "${logLevel}")`,
    );
  }
  const logFormat = env.WARREN_LOG_FORMAT ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new ConfigError(`WARREN_LOG_FORMAT must be text or json (got "${logFormat}")`);
  }

  return {
    config: {
      amqpUrl,
      host,
      port,
      handlersDir: env.WARREN_HANDLERS || "./handlers",
      prefix,
      storePath,
      apiToken,
      insecure,
      role,
      maxBodyBytes: parseBytes(env.WARREN_MAX_BODY ?? "1MiB", "WARREN_MAX_BODY"),
      publishTimeoutMs: parseMs(env.WARREN_PUBLISH_TIMEOUT ?? "5s", "WARREN_PUBLISH_TIMEOUT"),
      maxPending: parseInteger(env.WARREN_MAX_PENDING ?? "10000", "WARREN_MAX_PENDING", 1, 1e6),
      shutdownGraceMs: parseMs(env.WARREN_SHUTDOWN_GRACE ?? "30s", "WARREN_SHUTDOWN_GRACE"),
      logLevel: logLevel as Config["logLevel"],
      logFormat,
    },
    warnings,
  };
}

/**
 * Replaces the password of a URL with `***`, for logs and error messages.
 *
 * @example
 * ```ts
 * redactUrl("amqp://app:s3cret@rabbit:5672"); // "amqp://app:***@rabbit:5672"
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "<unparseable URL>";
  }
}

/** The secrets in a config that must never reach a log line or an error body. */
export function secretsOf(config: Pick<Config, "amqpUrl" | "apiToken">): string[] {
  const secrets: string[] = [];
  try {
    // RabbitMQ's default guest password is public knowledge; masking the word would garble logs.
    const password = new URL(config.amqpUrl).password;
    if (password && password !== "guest") secrets.push(password, decodeURIComponent(password));
  } catch {
    // An unparseable URL was refused by loadConfig already.
  }
  if (config.apiToken) secrets.push(config.apiToken);
  return [...new Set(secrets)].filter((secret) => secret.length > 0);
}

interface Flags {
  host?: string;
  port?: string;
  role?: string;
  insecure?: boolean;
}

function parseFlags(args: string[]): Flags {
  try {
    const { values } = parseArgs({
      args,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        role: { type: "string" },
        insecure: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
    return values;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ConfigError(
      `${message.split("\n")[0]} (flags: --role=all|api|worker --host --port --insecure)`,
    );
  }
}

function parseAmqpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError("AMQP_URL is not a valid URL (expected amqp://user:password@host:5672)");
  }
  if (parsed.protocol !== "amqp:" && parsed.protocol !== "amqps:") {
    throw new ConfigError(
      `AMQP_URL must start with amqp:// or amqps:// (got ${parsed.protocol}//...)`,
    );
  }
  if (!parsed.hostname) throw new ConfigError("AMQP_URL has no host name");
  return parsed;
}

function parseInteger(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${text}")`);
  }
  return value;
}

function parseBoolean(text: string | undefined, name: string): boolean {
  if (text === undefined || text === "") return false;
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new ConfigError(`${name} must be true or false (got "${text}")`);
}

function parseMs(text: string, name: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw new ConfigError(`${name} must be a duration such as 500ms, 5s or 2m (got "${text}")`);
  }
  return ms;
}

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
};

function parseBytes(text: string, name: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? BYTE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) === 0) {
    throw new ConfigError(`${name} must be a size such as 65536, 512KiB or 1MiB (got "${text}")`);
  }
  return Number(match[1]) * unit;
}
