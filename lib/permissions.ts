/**
 * A handler's sandbox: the Deno permissions its Web Workers get, which are what its config
 * declares (`permissions: { net, read, write, env, run, sys, ffi }`, in Deno's own vocabulary) and
 * the broker's nodes, which Warren's own worker code needs. Anything not declared is denied; a
 * handler that declares nothing gets nothing but the broker.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { TaskError } from "./events.ts";

/** The kinds of permission a handler may declare. */
export const PERMISSION_KINDS = ["net", "read", "write", "env", "run", "sys", "ffi"] as const;

/** One kind of permission. */
export type PermissionKind = typeof PERMISSION_KINDS[number];

/**
 * What a handler's config may declare: for each kind, the names it needs (hosts, paths, variables,
 * programs, system calls, libraries) or `true` for all of them.
 */
export type PermissionsConfig = Partial<Record<PermissionKind, string[] | true>>;

/** A handler's permissions, checked: paths absolute; an empty list for a kind it needs none of. */
export type Permissions = Record<PermissionKind, string[] | true>;

/** What Deno's `sys` permission names (see `Deno.PermissionDescriptor`). */
const SYS_NAMES = [
  "hostname",
  "osRelease",
  "osUptime",
  "loadavg",
  "networkInterfaces",
  "systemMemoryInfo",
  "uid",
  "gid",
  "cpus",
  "homedir",
  "getegid",
  "getPriority",
  "setPriority",
  "statfs",
  "username",
  "geteuid",
];

/**
 * Reads a handler's `config.permissions`; throws a one-line error naming `name` and the key when
 * one is wrong. Paths are made absolute against `projectDir`.
 *
 * @example
 * ```ts
 * const permissions = readPermissions({ net: ["api.example.com"], read: ["./uploads"] }, "p", "/app");
 * permissions.read; // ["/app/uploads"]
 * permissions.env; // []
 * ```
 */
export function readPermissions(value: unknown, name: string, projectDir: string): Permissions {
  const declared = value ?? {};
  if (typeof declared !== "object" || declared === null || Array.isArray(declared)) {
    throw new Error(`${name} must be an object such as { net: ["api.example.com"] }`);
  }
  const unknown = Object.keys(declared).filter((k) => !PERMISSION_KINDS.includes(k as never));
  if (unknown.length > 0) {
    throw new Error(
      `${name}: unknown key ${unknown.join(", ")} (known: ${PERMISSION_KINDS.join(", ")})`,
    );
  }
  const fields = declared as Record<string, unknown>;
  return Object.fromEntries(PERMISSION_KINDS.map((kind) => {
    const entries = fields[kind] ?? [];
    if (entries === true) return [kind, true];
    if (!Array.isArray(entries) || entries.some((e) => typeof e !== "string" || e === "")) {
      throw new Error(`${name}.${kind} must be a list of non-empty strings, or true for any`);
    }
    return [kind, entries.map((entry) => checked(kind, entry, `${name}.${kind}`, projectDir))];
  })) as Permissions;
}

/** One entry of a kind, checked (and a path made absolute). */
function checked(kind: PermissionKind, entry: string, name: string, projectDir: string): string {
  const problem = entryProblem(kind, entry);
  if (problem) throw new Error(`${name}: "${entry}" ${problem}`);
  if (kind === "read" || kind === "write" || kind === "ffi") {
    return isAbsolute(entry) ? entry : resolve(projectDir, entry);
  }
  return entry;
}

/** What is wrong with an entry, or undefined. */
function entryProblem(kind: PermissionKind, entry: string): string | undefined {
  switch (kind) {
    case "net":
      return /^[\w.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/i.test(entry)
        ? undefined
        : 'is not a host or host:port (such as "api.example.com" or "127.0.0.1:9000")';
    case "env":
      return /^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(entry)
        ? undefined
        : "is not an environment variable's name (a trailing * matches a prefix)";
    case "sys":
      return SYS_NAMES.includes(entry) ? undefined : `is not one of ${SYS_NAMES.join(", ")}`;
    default:
      return entry.includes("\0") ? "holds a NUL character" : undefined;
  }
}

/**
 * The kinds a handler declares that this process was not started with (a Web Worker gets no more
 * than its process has): `run` needs `--allow-run`, and so on.
 *
 * @example
 * ```ts
 * ungranted(readPermissions({ run: ["git"] }, "p", "/app")); // ["run"] unless started with --allow-run
 * ```
 */
export function ungranted(permissions: Permissions): PermissionKind[] {
  return PERMISSION_KINDS.filter((kind) => {
    const list = permissions[kind];
    if (list !== true && list.length === 0) return false;
    return Deno.permissions.querySync({ name: kind }).state !== "granted";
  });
}

/**
 * The permissions of a handler's Web Workers: what it declared, and the broker's nodes
 * (`host:port` each) on top of its `net`.
 *
 * @example
 * ```ts
 * const declared = readPermissions({}, "p", "/app");
 * workerPermissions(declared, ["localhost:5672"]).net; // ["localhost:5672"]
 * ```
 */
export function workerPermissions(
  permissions: Permissions,
  broker: string[],
): Record<PermissionKind | "import", string[] | boolean> {
  const net = permissions.net === true ? true : [...new Set([...broker, ...permissions.net])];
  const none = (list: string[] | true) => list === true ? true : list.length ? list : false;
  return {
    net,
    read: none(permissions.read),
    write: none(permissions.write),
    env: none(permissions.env),
    run: none(permissions.run),
    sys: none(permissions.sys),
    ffi: none(permissions.ffi),
    import: false,
  };
}

/** Where each broker node is, as `host:port`, from the broker's URLs (what its workers reach). */
export function brokerHosts(amqpUrls: readonly string[]): string[] {
  return amqpUrls.map((url) => {
    const { hostname, port, protocol } = new URL(url);
    return `${hostname}:${port || (protocol === "amqps:" ? 5671 : 5672)}`;
  });
}

/** What a denied access was for, read from Deno's `NotCapable` message. */
const DENIED = /Requires (\w+) access(?: to "([^"]*)")?/;

/** What a kind of access lets a handler do, for the message that says it may not. */
const VERBS: Record<string, string> = {
  net: "reach",
  read: "read",
  write: "write",
  env: "read the environment variable",
  run: "run",
  sys: "ask the system for",
  ffi: "load the library",
  import: "import from",
};

/**
 * The error of an attempt that met a permission its handler did not declare, rewritten to say
 * which config key to add; undefined for any other error.
 *
 * @example
 * ```ts
 * const error = { name: "NotCapable", message: 'Requires read access to "/etc/hosts", run again with the --allow-read flag' };
 * deniedPermission(error, "peek.ts")?.message;
 * // 'the handler may not read "/etc/hosts": add "/etc/hosts" to config.permissions.read in peek.ts'
 * ```
 */
export function deniedPermission(error: TaskError, file: string): TaskError | undefined {
  if (error.name !== "NotCapable") return undefined;
  const message = deniedAdvice(error.message, file);
  return message === undefined ? undefined : { ...error, message };
}

/**
 * What a message of Deno's about a denied permission means for a handler: what it may not do,
 * and which config key to add; undefined for any other message.
 *
 * @example
 * ```ts
 * deniedAdvice('Uncaught NotCapable: Requires env access to "KEY", run again…', "pay.ts");
 * // 'the handler may not read the environment variable "KEY": add "KEY" to config.permissions.env in pay.ts'
 * ```
 */
export function deniedAdvice(message: string, file: string): string | undefined {
  const match = DENIED.exec(message);
  if (!match) return undefined;
  const [, kind, what] = match;
  const key = `config.permissions.${kind}`;
  const target = what === undefined ? "" : ` "${what}"`;
  const advice = what === undefined
    ? `declare ${key} in ${file}`
    : `add "${what}" to ${key} in ${file}`;
  return `the handler may not ${VERBS[kind] ?? `use ${kind} on`}${target}: ${advice}`;
}
