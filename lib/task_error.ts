/**
 * Errors as a task records them: whatever a handler throws (an Error, a string, an object, a
 * value nothing can print) becomes a {@linkcode TaskError} whose every part is a string of bounded
 * size, so it fits an AMQP header table, an event and a store row, and reading it cannot throw.
 *
 * @module
 */

import type { TaskError } from "./events.ts";

/** Largest message or stack kept, in UTF-8 bytes; longer ones are cut and say so. */
export const ERROR_TEXT_MAX_BYTES = 4096;
/** Largest error name kept, in UTF-8 bytes. */
export const ERROR_NAME_MAX_BYTES = 256;
/** Causes followed (`error.cause`) into the stack. */
const CAUSES_MAX = 3;

/**
 * Describes anything thrown as a task error: name, message and stack of an Error (its causes
 * appended to the stack), or a printable form of any other value; each part bounded.
 *
 * @example
 * ```ts
 * describeError(new TypeError("nope")); // { name: "TypeError", message: "nope", stack: "…" }
 * describeError({ code: 7 }); // { message: '{"code":7}' }
 * describeError(new Error("x".repeat(1e6))).message.length; // about 4 KB
 * ```
 */
export function describeError(error: unknown): TaskError {
  if (!(error instanceof Error)) return { message: bound(printable(error), ERROR_TEXT_MAX_BYTES) };
  const described: TaskError = {
    name: bound(printable(read(error, "name")), ERROR_NAME_MAX_BYTES),
    message: bound(printable(read(error, "message")), ERROR_TEXT_MAX_BYTES),
  };
  const stack = read(error, "stack");
  if (typeof stack === "string") {
    described.stack = bound(stack + causes(error), ERROR_TEXT_MAX_BYTES);
  }
  return described;
}

/**
 * Cuts a text to at most `maxBytes` of UTF-8 (never inside a character) and says how long it was.
 *
 * @example
 * ```ts
 * bound("x".repeat(10_000), 4096); // "xxx…x… (truncated from 10000 bytes)"
 * ```
 */
export function bound(text: string, maxBytes: number): string {
  // Up to 3 bytes per UTF-16 unit: short texts need no encoding to know they fit.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = encoder.encode(text);
  if (bytes.byteLength <= maxBytes) return text;
  const note = `… (truncated from ${bytes.byteLength} bytes)`;
  const room = Math.max(0, maxBytes - encoder.encode(note).byteLength);
  const kept = decoder.decode(bytes.subarray(0, room));
  return kept.replace(/\uFFFD+$/, "") + note;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Where stack frames point, and what of it an error may show. */
export interface StackPlaces {
  /** URL prefixes of code whose frames are left out (Warren's own runtime). */
  hidden: string[];
  /** URL prefixes shown as relative paths (the project), first match wins. */
  relative: string[];
}

/**
 * A stack as an error shows it: the handler's frames with paths relative to the project,
 * packages as `npm:name@version/…`, no frames of Warren's runtime or of Deno's internals, and
 * no absolute path of the server.
 *
 * @example
 * ```ts
 * cleanStack("Error: x\n    at f (file:///srv/app/handlers/a.ts:1:7)", {
 *   hidden: [],
 *   relative: ["file:///srv/app/"],
 * }); // "Error: x\n    at f (handlers/a.ts:1:7)"
 * ```
 */
export function cleanStack(stack: string, places: StackPlaces): string {
  return stack.split("\n")
    .filter((line) => !FRAME.test(line) || !hidden(line, places))
    .map((line) => FRAME.test(line) ? shorten(line, places) : line)
    .join("\n");
}

/**
 * The stack cleaner of one handler: its frames relative to its project (the folder above its
 * handlers folder) or to Warren's, and none of Warren's runtime (`lib/`).
 *
 * @example
 * ```ts
 * const clean = handlerStacks("file:///srv/app/handlers/a.ts");
 * clean("Error: x\n    at f (file:///srv/app/handlers/a.ts:1:7)"); // "Error: x\n    at f (handlers/a.ts:1:7)"
 * ```
 */
export function handlerStacks(moduleUrl: string): (stack: string) => string {
  const places = {
    hidden: [new URL("./", import.meta.url).href],
    relative: [new URL("../", new URL(".", moduleUrl)).href, new URL("../", import.meta.url).href],
  };
  return (stack) => cleanStack(stack, places);
}

const FRAME = /^\s+at /;

function hidden(frame: string, places: StackPlaces): boolean {
  return /[( ](ext|node):/.test(frame) || places.hidden.some((prefix) => frame.includes(prefix));
}

function shorten(frame: string, places: StackPlaces): string {
  let line = frame;
  for (const prefix of places.relative) line = line.replaceAll(prefix, "");
  return line
    .replace(
      /file:\/\/\/\S*?\/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/([^/]+)\//g,
      "npm:$1@$2/",
    )
    .replace(/file:\/\/\/(?:[^/\s)]+\/)*([^/\s)]+)/g, "$1");
}

/** "Caused by" lines for an error's causes, each once, at most {@linkcode CAUSES_MAX}. */
function causes(error: Error): string {
  const seen = new Set<unknown>([error]);
  let text = "";
  let cause = read(error, "cause");
  for (let depth = 0; cause !== undefined && !seen.has(cause) && depth < CAUSES_MAX; depth++) {
    seen.add(cause);
    text += cause instanceof Error
      ? `\nCaused by: ${printable(read(cause, "name"))}: ${printable(read(cause, "message"))}`
      : `\nCaused by: ${printable(cause)}`;
    cause = cause instanceof Error ? read(cause, "cause") : undefined;
  }
  return text;
}

/** A property of a thrown value, or undefined when reading it throws (a hostile getter). */
function read(value: Error, key: "name" | "message" | "stack" | "cause"): unknown {
  try {
    return value[key];
  } catch {
    return undefined;
  }
}

/** A string for any value: strings as they are, objects as JSON, the rest as String() has it. */
function printable(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    if (typeof value === "object" && value !== null) {
      const json = JSON.stringify(value);
      if (json !== undefined) return json;
    }
    return String(value);
  } catch {
    return `an unprintable ${typeof value}`;
  }
}
