/**
 * Warren's configuration: environment variables and command-line flags, turned into one typed,
 * validated {@linkcode Config}. Every bad value raises a {@linkcode ConfigError} whose one-line
 * message names the variable or flag to fix. No password (of the broker or of the database)
 * appears in a message.
 *
 * @module
 */

import { type Allowance, parseAllowance } from "./callback/destination.ts";
import { readSecret } from "./callback/signature.ts";
import { parseArgs } from "node:util";
import { parseDuration } from "./duration.ts";
import { parseSize } from "./size.ts";

/** Which parts of Warren this process runs. */
export type Role = "all" | "api" | "worker";

/** Everything Warren reads from its environment, validated. */
export interface Config {
  /**
   * The broker's URL, with credentials, or the URLs of the nodes of one RabbitMQ cluster
   * (`AMQP_URL` lists them comma-separated). Log lines mask their passwords whatever they print
   * (the logger redacts {@linkcode secretsOf}); {@linkcode redactUrl} makes a URL safe to show.
   */
  amqpUrls: string[];
  host: string;
  port: number;
  /** Folder of handler modules. */
  handlersDir: string;
  /** Prefix of every exchange and queue name, so several Warrens can share one broker. */
  prefix: string;
  /**
   * The task store: the path of a SQLite file (one api process), or the `postgres://` URL of a
   * PostgreSQL database (any number of api processes).
   */
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
  /** The longest `?wait=` a request may hold its answer for a task to end. */
  maxWaitMs: number;
  /** How callbacks are signed, where they may go, and how they are retried. */
  callbacks: CallbackSettings;
  /** How long an `Idempotency-Key` lives (`WARREN_IDEMPOTENCY_TTL`). */
  idempotencyTtlMs: number;
  /** How long ended tasks are kept, unless their handler says otherwise. */
  retention: Retention;
  /** How often the api deletes what outlived its retention (`WARREN_PRUNE_INTERVAL`). */
  pruneIntervalMs: number;
  /**
   * How late a schedule's tick may be and still run on its own (`WARREN_SCHEDULE_MISFIRE`):
   * ticks missed for longer (everything was down) run once.
   */
  scheduleMisfireMs: number;
  /** How long a stop waits for in-flight handlers. */
  shutdownGraceMs: number;
  logLevel: "debug" | "info" | "warning" | "error";
  logFormat: "text" | "json";
}

/** How long ended tasks are kept after they end, by how they ended, in ms. */
export interface Retention {
  /** `WARREN_RETENTION`: succeeded tasks. */
  succeeded: number;
  /** `WARREN_RETENTION_DEAD`: dead tasks. */
  dead: number;
}

/** The settings of callbacks (see `callback/`). */
export interface CallbackSettings {
  /** `WARREN_WEBHOOK_SECRET` (`whsec_…`), which signs them; none means no callbacks. */
  secret: string | undefined;
  /** `WARREN_CALLBACK_ALLOW`: private addresses they may go to after all. */
  allow: Allowance;
  /** `WARREN_CALLBACK_RETRIES`: deliveries tried again after the first fails. */
  retries: number;
  /** `WARREN_CALLBACK_BACKOFF`: the wait before the first retry; it doubles, up to an hour. */
  backoffMs: number;
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

  const brokers = parseAmqpUrls(env.AMQP_URL || DEFAULT_AMQP_URL);
  if (brokers.some((broker) => decodeURIComponent(broker.username || "guest") === "guest")) {
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

  const storePath = parseStore(env.WARREN_STORE ?? "./data/warren.db");

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
      amqpUrls: brokers.map((broker) => broker.toString()),
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
      maxWaitMs: parseMaxWait(env.WARREN_MAX_WAIT ?? "60s"),
      callbacks: parseCallbacks(env),
      idempotencyTtlMs: parseMs(env.WARREN_IDEMPOTENCY_TTL ?? "24h", "WARREN_IDEMPOTENCY_TTL"),
      retention: {
        succeeded: parseMs(env.WARREN_RETENTION ?? "7d", "WARREN_RETENTION"),
        dead: parseMs(env.WARREN_RETENTION_DEAD ?? "30d", "WARREN_RETENTION_DEAD"),
      },
      pruneIntervalMs: parseMs(env.WARREN_PRUNE_INTERVAL ?? "1m", "WARREN_PRUNE_INTERVAL"),
      scheduleMisfireMs: parseMs(
        env.WARREN_SCHEDULE_MISFIRE ?? "1m",
        "WARREN_SCHEDULE_MISFIRE",
      ),
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

/**
 * The secrets in a config that must never reach a log line or an error body: the passwords of
 * the broker's nodes and of the database, and the API token.
 *
 * @example
 * ```ts
 * secretsOf({ amqpUrls: ["amqp://app:s3cret@rabbit"], storePath: "./warren.db", apiToken: undefined });
 * // ["s3cret"]
 * ```
 */
export function secretsOf(
  config: Pick<Config, "amqpUrls" | "storePath" | "apiToken"> & Partial<Pick<Config, "callbacks">>,
): string[] {
  const secrets: string[] = [];
  const urls = isPostgresUrl(config.storePath)
    ? [...config.amqpUrls, config.storePath]
    : config.amqpUrls;
  for (const url of urls) {
    try {
      // RabbitMQ's default guest password is public knowledge; masking the word would garble logs.
      const password = new URL(url).password;
      if (password && password !== "guest") secrets.push(password, decodeURIComponent(password));
    } catch {
      // An unparseable URL was refused by loadConfig already.
    }
  }
  if (config.apiToken) secrets.push(config.apiToken);
  if (config.callbacks?.secret) secrets.push(config.callbacks.secret);
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

/**
 * AMQP_URL: one URL, or the comma-separated URLs of one cluster's nodes. Each gets a 5 s
 * heartbeat unless it names one: heartbeats find a dead peer, and free the deliveries of a worker
 * that had to be terminated, within about two intervals (RabbitMQ's own default, 60 s, is slow).
 */
function parseAmqpUrls(text: string): URL[] {
  const urls = text.split(",").map((one) => one.trim());
  if (urls.some((one) => one === "")) {
    throw new ConfigError(
      "AMQP_URL has an empty entry (expected amqp://host-1:5672,amqp://host-2:5672)",
    );
  }
  return urls.map((one) => {
    const url = parseAmqpUrl(one);
    if (!url.searchParams.has("heartbeat")) url.searchParams.set("heartbeat", "5");
    return url;
  });
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

/**
 * Whether `WARREN_STORE` names a PostgreSQL database (else it is the path of a SQLite file).
 *
 * @example
 * ```ts
 * isPostgresUrl("postgres://warren@db:5432/warren"); // true
 * isPostgresUrl("./data/warren.db"); // false
 * ```
 */
export function isPostgresUrl(store: string): boolean {
  return /^postgres(ql)?:\/\//i.test(store);
}

/** WARREN_STORE: a SQLite file's path, or a PostgreSQL URL with a host and a database. */
function parseStore(store: string): string {
  if (store.trim() === "") throw new ConfigError("WARREN_STORE must not be empty");
  if (!isPostgresUrl(store)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(store)) {
      throw new ConfigError(
        "WARREN_STORE must be a file path (SQLite) or a postgres:// URL (got another URL scheme)",
      );
    }
    return store;
  }
  let url: URL;
  try {
    url = new URL(store);
  } catch {
    throw new ConfigError(
      "WARREN_STORE is not a valid URL (expected postgres://user:password@host:5432/database)",
    );
  }
  if (!url.hostname || url.pathname.length <= 1) {
    throw new ConfigError(
      "WARREN_STORE needs a host and a database (expected postgres://user:password@host:5432/database)",
    );
  }
  return store;
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

function parseCallbacks(env: Record<string, string | undefined>): CallbackSettings {
  const secret = env.WARREN_WEBHOOK_SECRET || undefined;
  const key = secret === undefined ? undefined : readSecret(secret);
  if (typeof key === "string") throw new ConfigError(key);
  const allow = parseAllowance(env.WARREN_CALLBACK_ALLOW);
  if (typeof allow === "string") throw new ConfigError(allow);
  return {
    secret,
    allow,
    retries: parseInteger(env.WARREN_CALLBACK_RETRIES ?? "10", "WARREN_CALLBACK_RETRIES", 0, 100),
    backoffMs: parseMs(env.WARREN_CALLBACK_BACKOFF ?? "5s", "WARREN_CALLBACK_BACKOFF"),
  };
}

/** `WARREN_MAX_WAIT`: up to 15 minutes, longer than any proxy in between keeps a request open. */
function parseMaxWait(text: string): number {
  const ms = parseMs(text, "WARREN_MAX_WAIT");
  if (ms > 15 * 60_000) {
    throw new ConfigError(`WARREN_MAX_WAIT must be at most 15m (got "${text}")`);
  }
  return ms;
}

function parseBytes(text: string, name: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined) {
    throw new ConfigError(`${name} must be a size such as 65536, 512KiB or 1MiB (got "${text}")`);
  }
  return bytes;
}
