/**
 * Runs Warren as a real process (`main.ts`, as `deno task start` does) for integration tests,
 * each with its own queue prefix and store file, and cleans up after it.
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import { connect } from "amqplib";
import { deleteAll, topology } from "../../lib/amqp/topology.ts";
import { startContract } from "./contract.ts";

/** The repository's root folder. */
export const ROOT = fromFileUrl(new URL("../../", import.meta.url));
/** The test handlers. */
export const FIXTURES = fromFileUrl(new URL("../fixtures/handlers", import.meta.url));
/** The broker the tests use. */
export const AMQP_URL = Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@localhost:5672";
/** Handlers in {@linkcode FIXTURES}, for cleanup. */
export const FIXTURE_HANDLERS = [...Deno.readDirSync(FIXTURES)]
  .filter((e) => e.isFile && e.name.endsWith(".ts"))
  .map((e) => e.name.replace(/\.ts$/, ""));

/** A unique queue prefix for one test run. */
export function uniquePrefix(name: string): string {
  return `test-${name}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Options of {@linkcode startWarren}. */
export interface StartOptions {
  prefix?: string;
  storePath?: string;
  handlersDir?: string;
  env?: Record<string, string>;
  args?: string[];
  /** Flags for `deno run` itself, e.g. `--v8-flags=...`. */
  denoFlags?: string[];
  /** Wait until GET /readyz answers 200 (default true). */
  ready?: boolean;
  /**
   * Check every answer against Warren's OpenAPI document, through a proxy at `url` (default
   * true; stop() fails on a violation). Off where a test needs the server itself: to see
   * refused connections, or to measure.
   */
  contract?: boolean;
}

/** A Warren process under test. */
export interface Process {
  /** Where to reach it: through the contract check, unless that is off. */
  url: string;
  /** Where it listens itself. */
  directUrl: string;
  /** The operating system's process id. */
  pid: number;
  prefix: string;
  storePath: string;
  /** Everything it printed so far. */
  output(): string;
  /** Sends a signal and waits for the exit; returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number>;
}

/** Starts Warren and waits until it listens (and is ready, unless told otherwise). */
export async function startWarren(options: StartOptions = {}): Promise<Process> {
  const prefix = options.prefix ?? uniquePrefix("warren");
  const storePath = options.storePath ?? `${await Deno.makeTempDir()}/warren.db`;
  const child = spawn(options, prefix, storePath);
  let output = "";
  const listening = Promise.withResolvers<string>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (match) listening.resolve(match[1]);
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then((status) => {
    listening.reject(new Error(`warren exited with ${status.code} before listening:\n${output}`));
    return status.code;
  });
  const timer = setTimeout(
    () => listening.reject(new Error(`warren did not listen within 20 s:\n${output}`)),
    20_000,
  );
  let url: string;
  try {
    url = await listening.promise;
    if (options.ready !== false) await waitFor(() => isReady(url), 20_000, "GET /readyz = 200");
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // it has exited already (the error says how)
    }
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }

  const contract = options.contract === false ? undefined : await startContract(url);
  let stopped: Promise<number> | undefined;
  return {
    url: contract?.url ?? url,
    directUrl: url,
    pid: child.pid,
    prefix,
    storePath,
    output: () => output,
    exited: Promise.all([exited, pumped]).then(([code]) => code),
    stop(signal = "SIGTERM") {
      if (!stopped) {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
        stopped = Promise.all([exited, pumped]).then(async ([code]) => {
          await contract?.close();
          const violations = contract?.violations() ?? [];
          if (violations.length > 0) {
            throw new Error(
              `answers the OpenAPI document does not allow:\n${violations.join("\n")}`,
            );
          }
          return code;
        });
      }
      return stopped;
    },
  };
}

/** Runs Warren to its exit (for start-up failures); returns the code and what it printed. */
export async function runWarren(
  options: StartOptions = {},
): Promise<{ code: number; output: string }> {
  const child = spawn(options, options.prefix ?? uniquePrefix("run"), ":memory:");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [stdout, stderr, status] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.status,
  ]);
  clearTimeout(timer);
  return { code: status.code, output: stdout + stderr };
}

function spawn(options: StartOptions, prefix: string, storePath: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-sys",
      "--allow-run",
      ...(options.denoFlags ?? []),
      "main.ts",
      ...(options.args ?? []),
    ],
    cwd: ROOT,
    env: {
      AMQP_URL,
      PORT: "0",
      WARREN_PREFIX: prefix,
      WARREN_STORE: storePath,
      WARREN_HANDLERS: options.handlersDir ?? FIXTURES,
      WARREN_SHUTDOWN_GRACE: "5s",
      NO_COLOR: "1",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function isReady(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/readyz`);
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Polls `check` until it returns a truthy value; fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Deletes every queue and exchange a prefix declared. */
export async function deleteTopology(prefix: string, handlers = FIXTURE_HANDLERS): Promise<void> {
  const connection = await connect(AMQP_URL);
  try {
    const ch = await connection.createChannel();
    await deleteAll(ch, topology(prefix), handlers);
    await ch.close();
  } finally {
    await connection.close();
  }
}

/** A JSON body as tests read it: loosely, field by field. */
// deno-lint-ignore no-explicit-any -- assertions check the shape, the type system need not
export type Json = any;

/** GETs a JSON document. */
export async function getJson(url: string, init?: RequestInit): Promise<[number, Json]> {
  const response = await fetch(url, init);
  return [response.status, await response.json()];
}

/** POSTs a task; returns the status and the JSON body. */
export async function postTask(
  url: string,
  handler: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<[number, Json, Headers]> {
  const response = await fetch(`${url}/tasks/${handler}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return [response.status, await response.json(), response.headers];
}

/** Waits until a task reaches `state` and returns it. */
export function waitForState(
  url: string,
  id: string,
  state: string,
  timeoutMs = 15_000,
  init?: RequestInit,
) {
  return waitFor(
    async () => {
      const [status, task] = await getJson(`${url}/tasks/${id}`, init);
      return status === 200 && task.state === state ? task : undefined;
    },
    timeoutMs,
    `task ${id} to be ${state}`,
  );
}

/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
}

/** Reads a Server-Sent Events stream to its end (or `timeoutMs`). */
export async function readSse(
  url: string,
  init?: RequestInit,
  timeoutMs = 20_000,
): Promise<SseEvent[]> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok || !response.body) throw new Error(`SSE ${url}: ${response.status}`);
  const text = await response.text();
  return text.split("\n\n").filter((block) => block.includes("data:")).map((block) => {
    const lines = block.split("\n");
    const field = (name: string) =>
      lines.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart())
        .join("\n");
    return { event: field("event") || "message", data: field("data") };
  });
}

/** The processes of one Warren under one prefix (api nodes, worker processes), and their end. */
export interface Fleet {
  /** Starts one more process of `role`, with `env` on top of the fleet's. */
  start(role: "api" | "worker" | "all", env?: Record<string, string>): Promise<Process>;
  /** Stops every process, then deletes what the prefix declared (even if a stop failed). */
  stop(handlers?: string[]): Promise<void>;
}

/**
 * A fleet of Warren processes under `prefix`, running the handlers in `handlersDir`.
 *
 * @example
 * ```ts
 * const processes = fleet(uniquePrefix("nodes"));
 * await processes.start("worker");
 * await processes.stop();
 * ```
 */
export function fleet(prefix: string, handlersDir?: string): Fleet {
  const started: Process[] = [];
  return {
    async start(role, env = {}) {
      const process = await startWarren({ prefix, env, args: [`--role=${role}`], handlersDir });
      started.push(process);
      return process;
    },
    async stop(handlers) {
      await Promise.all(started.map((process) => process.stop()))
        .finally(() => deleteTopology(prefix, handlers));
    },
  };
}
